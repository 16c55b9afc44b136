package api

import (
	"crypto/rand"
	"encoding/base64"
	"mime"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"
)

// idPattern is what a topic or subscription ID may be (DESIGN "The REST
// API"). \w is ASCII here, so IDs need no escaping in paths.
var idPattern = regexp.MustCompile(`^[\w.+-]{1,200}$`)

// validID reports whether s can be an ID; path parameters that cannot be
// never reach the database.
func validID(s string) bool { return idPattern.MatchString(s) }

func checkID(field, s string) *apiError {
	if !validID(s) {
		return invalid(field, "%s must be 1 to 200 letters, digits, '_', '.', '+' or '-'", field)
	}
	return nil
}

// checkText accepts a non-empty string of at most max bytes that PostgreSQL
// can store (text refuses NUL).
func checkText(field, s string, max int) *apiError {
	switch {
	case s == "":
		return invalid(field, "%s must not be empty", field)
	case len(s) > max:
		return invalid(field, "%s must be at most %d bytes", field, max)
	case strings.ContainsRune(s, 0) || !utf8.ValidString(s):
		return invalid(field, "%s must be UTF-8 text without NUL characters", field)
	}
	return nil
}

const (
	maxNameBytes   = 1000
	maxURLBytes    = 2048
	maxSecretBytes = 200
)

// checkURL accepts an absolute http or https URL with a host.
func checkURL(s string) *apiError {
	if err := checkText("url", s, maxURLBytes); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return invalid("url", "url must be an absolute http or https URL, such as https://example.com/hooks")
	}
	return nil
}

// Limits of a subscription's settings. The floor is DESIGN's (0 and negatives
// are refused); the ceilings keep one subscription from holding a delivery
// for days or a deliverer's workers for minutes.
var limits = map[string]struct{ min, max, def int }{
	"max_delivery_attempts":    {1, 100, 5},
	"delivery_attempt_delay":   {1, 86_400, 60},
	"delivery_attempt_timeout": {1, 300, 5},
	"max_concurrent_requests":  {1, 1_000, 8},
}

func checkLimit(field string, v int) *apiError {
	l := limits[field]
	if v < l.min || v > l.max {
		return invalid(field, "%s must be from %d to %d", field, l.min, l.max)
	}
	return nil
}

// Signing secrets follow Standard Webhooks: "whsec_" and the base64 of the
// key, which should be 24 to 64 bytes.
const signingSecretPrefix = "whsec_"

func checkSigningSecret(s string) *apiError {
	b64, ok := strings.CutPrefix(s, signingSecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		return invalid("signing_secret", "signing_secret must be %q followed by the base64 of 24 to 64 bytes", signingSecretPrefix)
	}
	return nil
}

// newSigningSecret makes a Standard Webhooks secret of 32 random bytes.
func newSigningSecret() string {
	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand)
	return signingSecretPrefix + base64.StdEncoding.EncodeToString(key)
}

// newSecretToken makes the 40-character secret_token a subscription gets when
// none is given.
func newSecretToken() string {
	return rand.Text() + rand.Text()[:14] // 26 + 14 base32 characters
}

const maxContentTypeBytes = 200

func checkContentType(s string) *apiError {
	if err := checkText("content_type", s, maxContentTypeBytes); err != nil {
		return err
	}
	if _, _, err := mime.ParseMediaType(s); err != nil {
		return invalid("content_type", "content_type must be a media type such as application/json")
	}
	return nil
}

const maxIdempotencyKeyBytes = 255

// checkIdempotencyKey accepts 1 to 255 printable ASCII characters.
func checkIdempotencyKey(field, s string) *apiError {
	if s == "" || len(s) > maxIdempotencyKeyBytes {
		return invalid(field, "%s must be 1 to %d characters", field, maxIdempotencyKeyBytes)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return invalid(field, "%s must be printable ASCII", field)
		}
	}
	return nil
}
