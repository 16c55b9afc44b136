package app

import (
	"crypto/rand"
	"encoding/base64"
	"mime"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/hammer-webhooks/hammer/platform/subscription"
)

// idPattern is what a topic or subscription ID may be (DESIGN "The REST
// API"). \w is ASCII here, so IDs need no escaping in paths.
var idPattern = regexp.MustCompile(`^[\w.+-]{1,200}$`)

// ValidID reports whether s can be an ID; path parameters that cannot be
// never reach the database.
func ValidID(s string) bool { return idPattern.MatchString(s) }

// CheckID holds the ID in field (a path's, a body's or a filter's) to the
// pattern.
func CheckID(field, s string) *Error {
	if !ValidID(s) {
		return InvalidField(field, "%s must be 1 to 200 letters, digits, '_', '.', '+' or '-'", field)
	}
	return nil
}

// checkText accepts a non-empty string of at most max bytes that PostgreSQL
// can store (text refuses NUL).
func checkText(field, s string, max int) *Error {
	switch {
	case s == "":
		return InvalidField(field, "%s must not be empty", field)
	case len(s) > max:
		return InvalidField(field, "%s must be at most %d bytes", field, max)
	case strings.ContainsRune(s, 0) || !utf8.ValidString(s):
		return InvalidField(field, "%s must be UTF-8 text without NUL characters", field)
	}
	return nil
}

const (
	MaxNameBytes   = 1000 // of a topic's or a subscription's name
	maxURLBytes    = 2048
	maxSecretBytes = 200
)

// checkURL accepts an absolute http or https URL with a host.
func checkURL(s string) *Error {
	if err := checkText("url", s, maxURLBytes); err != nil {
		return err
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return InvalidField("url", "url must be an absolute http or https URL, such as https://example.com/hooks")
	}
	return nil
}

// checkLimit holds a subscription's setting to its limit
// (platform/subscription, where the defaults live too).
func checkLimit(l subscription.Limit, v int) *Error {
	if !l.Allows(v) {
		return InvalidField(l.Field, "%s must be from %d to %d", l.Field, l.Min, l.Max)
	}
	return nil
}

// Signing secrets follow Standard Webhooks: "whsec_" and the base64 of the
// key, which should be 24 to 64 bytes.
const signingSecretPrefix = "whsec_"

func checkSigningSecret(s string) *Error {
	b64, ok := strings.CutPrefix(s, signingSecretPrefix)
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 24 || len(key) > 64 {
		return InvalidField("signing_secret", "signing_secret must be %q followed by the base64 of 24 to 64 bytes", signingSecretPrefix)
	}
	return nil
}

// NewSigningSecret makes a Standard Webhooks secret of 32 random bytes.
func NewSigningSecret() string {
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

func checkContentType(s string) *Error {
	if err := checkText("content_type", s, maxContentTypeBytes); err != nil {
		return err
	}
	if _, _, err := mime.ParseMediaType(s); err != nil {
		return InvalidField("content_type", "content_type must be a media type such as application/json")
	}
	return nil
}

const maxIdempotencyKeyBytes = 255

// CheckIdempotencyKey accepts 1 to 255 printable ASCII characters.
func CheckIdempotencyKey(field, s string) *Error {
	if s == "" || len(s) > maxIdempotencyKeyBytes {
		return InvalidField(field, "%s must be 1 to %d characters", field, maxIdempotencyKeyBytes)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return InvalidField(field, "%s must be printable ASCII", field)
		}
	}
	return nil
}
