package events_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// attemptEvent is an attempt as the deliverer publishes it for a small
// message: the request and response carry their raw HTTP text, whose JSON
// body is escaped again inside the event.
func attemptEvent() *events.Attempt {
	at := time.Date(2026, 11, 28, 14, 0, 0, 123456000, time.UTC)
	body := `{"topic_id":"orders","subscription_id":"orders-to-billing","message_id":"01KB5ZJ4V3Q0Y6N9R2W8T1X7CD",` +
		`"secret_token":"s3cr3t","data":"eyJvcmRlciI6IDQyLCAidG90YWwiOiAiMTkuOTkifQ==","created_at":"2026-11-28T14:00:00.123456Z"}`
	request := "POST /hooks/billing HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nContent-Type: application/json\r\n" +
		"User-Agent: hammer/1.0.0\r\nWebhook-Id: 01KB5ZJ4V3Q0Y6N9R2W8T1X7CE\r\nWebhook-Timestamp: 1795874400\r\n" +
		"Webhook-Signature: v1," + strings.Repeat("Q", 44) + "\r\n\r\n" + body
	return &events.Attempt{
		DeliveryRef: events.DeliveryRef{
			DeliveryID: "01KB5ZJ4V3Q0Y6N9R2W8T1X7CE", MessageID: "01KB5ZJ4V3Q0Y6N9R2W8T1X7CD",
			TopicID: "orders", SubscriptionID: "orders-to-billing", MessageSequence: 123456,
			MessageCreatedAt: at, DeliveryCreatedAt: at,
		},
		Target: events.Target{
			URL:                 "http://127.0.0.1:9000/hooks/billing",
			MaxDeliveryAttempts: 5, DeliveryAttemptDelay: 60, DeliveryAttemptTimeout: 5,
		},
		AttemptID: "01KB5ZJ4V3Q0Y6N9R2W8T1X7CF", Attempt: 1, ScheduledAt: at,
		Request:            request,
		Response:           "HTTP/1.1 204 No Content\r\nDate: Sat, 28 Nov 2026 14:00:00 GMT\r\n\r\n",
		ResponseStatusCode: 204, ExecutionDuration: 3, Success: true,
		CreatedAt: at, Status: events.StatusCompleted,
	}
}

func BenchmarkEncodeAttempt(b *testing.B) {
	a := attemptEvent()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := events.Encode(a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAttempt(b *testing.B) {
	data, err := events.Encode(attemptEvent())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var a events.Attempt
		if err := events.Decode(data, &a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeDelivery(b *testing.B) {
	a := attemptEvent()
	data, err := events.Encode(&events.Delivery{DeliveryRef: a.DeliveryRef, Target: a.Target, Attempt: 1, NotBefore: a.ScheduledAt})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		var d events.Delivery
		if err := events.Decode(data, &d); err != nil {
			b.Fatal(err)
		}
	}
}
