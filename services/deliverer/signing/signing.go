// Package signing signs deliveries the way Standard Webhooks receivers
// verify them, so a receiver can use any Standard Webhooks library instead
// of code written for hammer.
package signing

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every signing secret hammer generates: the rest is the
// base64 of the key.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a receiver lets a timestamp drift from its
// clock before refusing a request as a possible replay.
const DefaultTolerance = 5 * time.Minute

// ErrNoMatch reports a request whose signatures were not made with the
// receiver's secret (or whose body was changed on the way).
var ErrNoMatch = errors.New("no matching signature")

// ParseSecret returns the HMAC key of a signing secret. The prefix is
// optional, as in the reference libraries, so a secret pasted without it
// still works.
func ParseSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil {
		return nil, fmt.Errorf("signing secret is not %s followed by base64: %w", SecretPrefix, err)
	}
	if len(key) == 0 {
		return nil, errors.New("signing secret is empty")
	}
	return key, nil
}

// Sign returns the webhook-signature value for a request: "v1," and the
// base64 HMAC-SHA256 of "<id>.<timestamp>.<body>".
func Sign(key []byte, id string, timestamp time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(timestamp.Unix(), 10), body))
}

func mac(key []byte, id, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte{'.'})
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// SetHeaders signs body with secret and sets the three Standard Webhooks
// headers on h. Each of previous (secrets being rotated out) adds its own
// signature after the first, space-separated as the specification allows,
// so a receiver that still holds an older secret verifies the request too.
func SetHeaders(h http.Header, secret, id string, timestamp time.Time, body []byte, previous ...string) error {
	keys := make([][]byte, 0, 1+len(previous))
	for _, s := range append([]string{secret}, previous...) {
		key, err := ParseSecret(s)
		if err != nil {
			return err
		}
		keys = append(keys, key)
	}
	sigs := make([]string, len(keys))
	for i, key := range keys {
		sigs[i] = Sign(key, id, timestamp, body)
	}
	// Set directly rather than with h.Set: the specification spells the
	// names in lower case and some receivers compare them as written.
	h[HeaderID] = []string{id}
	h[HeaderTimestamp] = []string{strconv.FormatInt(timestamp.Unix(), 10)}
	h[HeaderSignature] = []string{strings.Join(sigs, " ")}
	return nil
}

// Verify is what a receiver does with a request: it checks that the
// timestamp is within tolerance of now and that one of the signatures in the
// header was made with secret over this body. hammer's tests use it as a
// receiver would.
func Verify(secret string, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	key, err := ParseSecret(secret)
	if err != nil {
		return err
	}
	id, ts, sigs := header(h, HeaderID), header(h, HeaderTimestamp), header(h, HeaderSignature)
	if id == "" || ts == "" || sigs == "" {
		return errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q is not Unix seconds", ts)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("webhook-timestamp %s is %s away from now, more than %s", ts, d.Round(time.Second), tolerance)
	}
	want := mac(key, id, ts, body)
	for _, sig := range strings.Fields(sigs) {
		version, value, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(value)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrNoMatch
}

// header reads a header whether it was set canonically or in lower case.
func header(h http.Header, name string) string {
	if v := h.Get(name); v != "" {
		return v
	}
	if v := h[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
