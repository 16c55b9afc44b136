package api

import (
	"github.com/hammer-webhooks/hammer/services/api/app"

	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

var codePattern = regexp.MustCompile(`^[a-z_]+$`)

// checkRefusal holds every refusal to the contract: a 4xx with a code and a
// message, never a 5xx.
func checkRefusal(t *testing.T, what string, e *apiError) {
	t.Helper()
	if e.status < 400 || e.status > 499 {
		t.Fatalf("%s: status %d for bad input: %v", what, e.status, e)
	}
	if !codePattern.MatchString(e.body.Code) || e.body.Message == "" {
		t.Fatalf("%s: malformed error %+v", what, e.body)
	}
	if e.status == http.StatusBadRequest && e.body.Code != "invalid_json" && e.body.Code != "unknown_field" &&
		!strings.HasPrefix(e.body.Code, "invalid_") {
		t.Fatalf("%s: 400 with code %q", what, e.body.Code)
	}
}

// storable fails t when s could not go into a Postgres text column.
func storable(t *testing.T, what, s string) {
	t.Helper()
	if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
		t.Fatalf("%s: accepted %q, which Postgres cannot store", what, s)
	}
}

// FuzzDecodeRequests feeds arbitrary bytes to every request decoder and the
// list parameters. Whatever comes in, the answer is a well-formed 4xx or a
// value that passes every rule and that Postgres can store; never a panic.
// Its seed corpus runs with the other tests; `go test -fuzz
// FuzzDecodeRequests` explores further.
func FuzzDecodeRequests(f *testing.F) {
	for _, seed := range []string{
		`{"topic": {"id": "person", "name": "Person"}}`,
		`{"subscription": {"id": "httpbin-post", "topic_id": "person", "name": "Httpbin Post", "url": "https://httpbin.org/post", "secret_token": "my-super-secret-token", "max_delivery_attempts": 5, "delivery_attempt_delay": 60, "delivery_attempt_timeout": 5}}`,
		`{"message": {"topic_id": "person", "data": "{\"name\": \"Allisson\"}"}}`,
		`{"message": {"topic_id": "t", "data": {"a": [1, 2]}, "content_type": "application/x+json; q=1"}}`,
		`{"messages": [{"topic_id": "t", "data": "a", "idempotency_key": "k"}, {"topic_id": "t", "data": [1]}]}`,
		`{"subscription": {"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "max_concurrent_requests": 0}}`,
		`{"topic": {"id": "a\u0000", "name": "\ud800"}}`,
		`{"topic": {"id": 1e400}}`,
		`{"subscription": {"url": "http://[::1]:80/x", "delivery_attempt_delay": -9223372036854775809}}`,
		`{"message": {"topic_id": "t", "data": "\u0000"}} trailing`,
		`{"messages": [null, 1, "x", {}]}`,
		`[{"topic": {}}]`,
		`null`, `""`, `{`, ``, "\xff\xfe",
		`limit=1&offset=2&order=asc&created_at_gt=2024-01-01T00:00:00Z&topic_id=a.b&status=failed`,
		`limit=-1&offset=99999999999&created_at_lt=2024-01-01T00:00:00 01:00&delivery_id=%00`,
	} {
		f.Add([]byte(seed))
	}
	const maxBytes = 64
	f.Fuzz(func(t *testing.T, body []byte) {
		if f, err := decodeTopic(body, ""); err != nil {
			checkRefusal(t, "topic create", err)
		} else {
			if !validID(*f.ID) {
				t.Fatalf("topic: accepted id %q", *f.ID)
			}
			storable(t, "topic name", *f.Name)
		}
		if f, err := decodeTopic(body, "path-id"); err != nil {
			checkRefusal(t, "topic patch", err)
		} else if f.ID != nil && *f.ID != "path-id" {
			t.Fatalf("topic patch: accepted id %q for path-id", *f.ID)
		}
		for _, pathID := range []string{"", "path-id"} {
			f, err := decodeSubscription(body, pathID)
			if err != nil {
				checkRefusal(t, "subscription", err)
				continue
			}
			for _, s := range []*string{f.ID, f.TopicID, f.Name, f.URL, f.SecretToken, f.SigningSecret} {
				if s != nil {
					storable(t, "subscription field", *s)
				}
			}
			if f.URL != nil {
				if u, err := url.Parse(*f.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					t.Fatalf("subscription: accepted url %q", *f.URL)
				}
			}
			for _, v := range []*int{f.MaxDeliveryAttempts, f.DeliveryAttemptDelay, f.DeliveryAttemptTimeout, f.MaxConcurrentRequests} {
				if v != nil && (*v < 1 || *v > 86_400) {
					t.Fatalf("subscription: accepted limit %d", *v)
				}
			}
		}
		// The message decoders take the body as readJSON gives it: one
		// valid JSON value.
		var raw json.RawMessage
		if err := decodeStrict(body, &raw); err != nil {
			checkRefusal(t, "message body", err)
		}
		var drafts []draft
		if raw == nil {
			// refused above
		} else if d, err := decodeMessage(raw, maxBytes); err != nil {
			checkRefusal(t, "message", err)
		} else {
			drafts = append(drafts, d)
		}
		if raw == nil {
			// refused above
		} else if ds, err := decodeBatch(raw, maxBytes); err != nil {
			checkRefusal(t, "batch", err)
			if err.body.Index != nil && !strings.HasPrefix(err.body.Message, "messages[") {
				t.Fatalf("batch: error with index but message %q", err.body.Message)
			}
		} else {
			if len(ds) == 0 || len(ds) > maxBatchItems {
				t.Fatalf("batch: accepted %d items", len(ds))
			}
			drafts = append(drafts, ds...)
		}
		for _, d := range drafts {
			if !validID(d.TopicID) || len(d.Data) > maxBytes {
				t.Fatalf("message: accepted topic %q with %d bytes", d.TopicID, len(d.Data))
			}
			if _, _, err := mime.ParseMediaType(d.ContentType); err != nil {
				t.Fatalf("message: accepted content type %q", d.ContentType)
			}
			storable(t, "content type", d.ContentType)
			if d.Key != "" && app.CheckIdempotencyKey("k", d.Key) != nil {
				t.Fatalf("message: accepted idempotency key %q", d.Key)
			}
		}

		q, err := url.ParseQuery(string(body))
		if err != nil {
			return
		}
		if p, err := parseList(q); err != nil {
			checkRefusal(t, "list", err)
		} else if p.Limit < 1 || p.Limit > maxLimit || p.Offset < 0 {
			t.Fatalf("list: accepted limit %d offset %d", p.Limit, p.Offset)
		}
		for _, name := range []string{"topic_id", "subscription_id", "message_id", "delivery_id"} {
			if v, err := idFilter(q, name); err != nil {
				checkRefusal(t, "filter", err)
			} else if v != nil && !validID(*v) {
				t.Fatalf("filter: accepted %q", *v)
			}
		}
	})
}
