package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// agree decodes body into a T with decodeStrict (goccy/go-json first) and
// with encoding/json alone, and fails t unless both give the same value or
// the same refusal.
func agree[T any](t *testing.T, body []byte) {
	t.Helper()
	var fast, std T
	fastErr, stdErr := decodeStrict(body, &fast), decodeStd(body, &std)
	switch {
	case (fastErr == nil) != (stdErr == nil):
		t.Fatalf("%T from %q: fast path says %v, encoding/json says %v", fast, body, fastErr, stdErr)
	case fastErr != nil:
		if fastErr.status != stdErr.status || fastErr.body.Code != stdErr.body.Code || fastErr.body.Message != stdErr.body.Message {
			t.Fatalf("%T from %q: fast path refuses with %+v, encoding/json with %+v", fast, body, fastErr.body, stdErr.body)
		}
	case !reflect.DeepEqual(fast, std):
		t.Fatalf("%T from %q: fast path decodes %#v, encoding/json %#v", fast, body, fast, std)
	}
}

// FuzzFastDecodingAgreesWithEncodingJSON holds the API's JSON fast path to
// encoding/json's results for every request body type: the same values for
// what both accept, and nothing accepted that encoding/json refuses.
func FuzzFastDecodingAgreesWithEncodingJSON(f *testing.F) {
	for _, seed := range []string{
		`{"topic": {"id": "person", "name": "Person"}}`,
		`{"subscription": {"id": "s", "topic_id": "t", "name": "S", "url": "https://example.com/x", "secret_token": "x", "max_delivery_attempts": 5, "delivery_attempt_delay": 60, "delivery_attempt_timeout": 5, "max_concurrent_requests": 8, "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}`,
		`{"subscription": {"max_delivery_attempts": 1.5}}`, `{"subscription": {"max_delivery_attempts": 1e2}}`,
		`{"subscription": {"max_delivery_attempts": 99999999999999999999}}`, `{"subscription": {"max_delivery_attempts": "5"}}`,
		`{"subscription": {"max_delivery_attempts": -0}}`, `{"subscription": {"url": null, "name": true}}`,
		`{"message": {"topic_id": "person", "data": "{\"name\": \"Allisson\"}"}}`,
		`{"message": {"topic_id": "t", "data": {"a": [1, 2]}, "content_type": "application/x+json; q=1"}}`,
		`{"message": {"topic_id": "t", "data": null}}`, `{"message": {"topic_id": "t", "data": 12}}`,
		`{"message": {"TOPIC_ID": "t", "Data": "x"}}`, `{"message": {"topic_id": "a", "topic_id": "b"}}`,
		`{"message": {"topic_id": "t", "data": "\ud800 \udc00 \ud83d\ude00 \u0000 \/ \b\f\n\r\t"}}`,
		"{\"message\": {\"topic_id\": \"t\", \"data\": \"raw \xff\xfe bytes\"}}",
		`{"messages": [{"topic_id": "t", "data": "a", "idempotency_key": "k"}, {"topic_id": "t", "data": [1]}]}`,
		`{"messages": [null, 1, "x", {}]}`, `{"messages": {}}`, `{"messages": [{"extra": 1}]}`,
		`{"topic": {"id": "a\u0000", "name": "\ud800"}}`, `{"topic": {"id": 1e400}}`, `{"topic": {"id": "x"}, "other": 1}`,
		`{"message": {"topic_id": "t", "data": "x"}} trailing`, `{"topic": {}} {"topic": {}}`,
		`[{"topic": {}}]`, `null`, `""`, `"just a string"`, `{`, ``, " \t\n", "\xff\xfe", `{"a":1,}`, `{"topic": {"id": "x",}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		agree[topicRequest](t, body)
		agree[subscriptionRequest](t, body)
		agree[messageRequest](t, body)
		agree[batchRequest](t, body)
		agree[batchItem](t, body)
		agree[json.RawMessage](t, body)

		if json.Valid(body) && bytes.HasPrefix(bytes.TrimSpace(body), []byte(`"`)) {
			var fast, std string
			if err := unquote(bytes.TrimSpace(body), &fast); err != nil {
				t.Fatalf("unquote(%q): %v", body, err)
			}
			if err := json.Unmarshal(body, &std); err != nil {
				t.Fatalf("encoding/json refuses the valid string %q: %v", body, err)
			}
			if fast != std {
				t.Fatalf("unquote(%q) = %q, encoding/json says %q", body, fast, std)
			}
		}
	})
}

// BenchmarkDecodeBatch reads a batch of 100 small messages as
// POST /v1/messages:batch does: the body, then the batch, then each message.
func BenchmarkDecodeBatch(b *testing.B) {
	var body bytes.Buffer
	body.WriteString(`{"messages": [`)
	for i := range 100 {
		if i > 0 {
			body.WriteString(", ")
		}
		body.WriteString(`{"topic_id": "orders", "data": "{\"order\": 42, \"total\": \"19.99\", \"lines\": [1, 2, 3]}", "idempotency_key": "key-` + string(rune('a'+i%26)) + `"}`)
	}
	body.WriteString(`]}`)
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		var raw json.RawMessage
		if err := decodeStrict(body.Bytes(), &raw); err != nil {
			b.Fatal(err)
		}
		if _, err := decodeBatch(raw, 512<<10); err != nil {
			b.Fatal(err)
		}
	}
}
