package api

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/subscription"
	"github.com/hammer-webhooks/hammer/services/api/app"
	"github.com/hammer-webhooks/hammer/sql/store/catalog"
	"github.com/hammer-webhooks/hammer/sql/store/record"
)

// timestamp writes a time as the seed does: RFC 3339, UTC, always six
// fractional digits ("2020-05-12T18:51:45.065849Z").
type timestamp time.Time

const timestampLayout = events.TimeLayout

func (t timestamp) MarshalJSON() ([]byte, error) {
	u := time.Time(t).UTC().Truncate(time.Microsecond)
	b := make([]byte, 0, len(timestampLayout)+2)
	b = append(b, '"')
	b = u.AppendFormat(b, timestampLayout)
	return append(b, '"'), nil
}

// now is the time a change is stamped with, at the precision Postgres keeps.
func now() time.Time { return app.Now() }

// Topic is a topic as the API returns it.
type Topic struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt timestamp `json:"created_at"`
	UpdatedAt timestamp `json:"updated_at"`
}

func topicOut(t catalog.Topic) Topic {
	return Topic{ID: t.ID, Name: t.Name, CreatedAt: timestamp(t.CreatedAt), UpdatedAt: timestamp(t.UpdatedAt)}
}

// Subscription is a subscription as the API returns it: the seed's fields,
// the Standard Webhooks signing secret and the concurrency cap.
type Subscription struct {
	ID                     string    `json:"id"`
	TopicID                string    `json:"topic_id"`
	Name                   string    `json:"name"`
	URL                    string    `json:"url"`
	SecretToken            string    `json:"secret_token"`
	SigningSecret          string    `json:"signing_secret"`
	MaxDeliveryAttempts    int       `json:"max_delivery_attempts"`
	DeliveryAttemptDelay   int       `json:"delivery_attempt_delay"`
	DeliveryAttemptTimeout int       `json:"delivery_attempt_timeout"`
	MaxConcurrentRequests  int       `json:"max_concurrent_requests"`
	CreatedAt              timestamp `json:"created_at"`
	UpdatedAt              timestamp `json:"updated_at"`
}

func subscriptionOut(s subscription.Subscription) Subscription {
	return Subscription{
		ID: s.ID, TopicID: s.TopicID, Name: s.Name, URL: s.URL,
		SecretToken: s.SecretToken, SigningSecret: s.SigningSecret,
		MaxDeliveryAttempts:    s.MaxDeliveryAttempts,
		DeliveryAttemptDelay:   s.DeliveryAttemptDelay,
		DeliveryAttemptTimeout: s.DeliveryAttemptTimeout,
		MaxConcurrentRequests:  s.MaxConcurrentRequests,
		CreatedAt:              timestamp(s.CreatedAt), UpdatedAt: timestamp(s.UpdatedAt),
	}
}

// Message is a message as the API returns it; data is base64 as in the seed.
type Message struct {
	ID          string    `json:"id"`
	TopicID     string    `json:"topic_id"`
	Data        []byte    `json:"data"`
	ContentType string    `json:"content_type"`
	CreatedAt   timestamp `json:"created_at"`
}

func messageOut(m record.Message) Message {
	return Message{ID: m.ID, TopicID: m.TopicID, Data: nonNil(m.Data), ContentType: m.ContentType, CreatedAt: timestamp(m.CreatedAt)}
}

func publishedOut(m events.Message) Message {
	return Message{ID: m.ID, TopicID: m.TopicID, Data: nonNil(m.Data), ContentType: m.ContentType, CreatedAt: timestamp(m.CreatedAt)}
}

// nonNil keeps empty data "" in JSON rather than null.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Delivery is a delivery as the API returns it: the seed's fields, with the
// message's data, and why it failed when it did.
type Delivery struct {
	ID                     string    `json:"id"`
	TopicID                string    `json:"topic_id"`
	SubscriptionID         string    `json:"subscription_id"`
	MessageID              string    `json:"message_id"`
	Data                   []byte    `json:"data"`
	URL                    string    `json:"url"`
	SecretToken            string    `json:"secret_token"`
	MaxDeliveryAttempts    int       `json:"max_delivery_attempts"`
	DeliveryAttemptDelay   int       `json:"delivery_attempt_delay"`
	DeliveryAttemptTimeout int       `json:"delivery_attempt_timeout"`
	DeliveryAttempts       int       `json:"delivery_attempts"`
	Status                 string    `json:"status"`
	FailureReason          *string   `json:"failure_reason,omitempty"`
	ScheduledAt            timestamp `json:"scheduled_at"`
	CreatedAt              timestamp `json:"created_at"`
	UpdatedAt              timestamp `json:"updated_at"`
}

func deliveryOut(d record.Delivery) Delivery {
	return Delivery{
		ID: d.ID, TopicID: d.TopicID, SubscriptionID: d.SubscriptionID, MessageID: d.MessageID,
		Data: nonNil(d.Data), URL: d.URL, SecretToken: d.SecretToken,
		MaxDeliveryAttempts:    d.MaxDeliveryAttempts,
		DeliveryAttemptDelay:   d.DeliveryAttemptDelay,
		DeliveryAttemptTimeout: d.DeliveryAttemptTimeout,
		DeliveryAttempts:       d.DeliveryAttempts,
		Status:                 d.Status,
		FailureReason:          d.FailureReason,
		ScheduledAt:            timestamp(d.ScheduledAt),
		CreatedAt:              timestamp(d.CreatedAt),
		UpdatedAt:              timestamp(d.UpdatedAt),
	}
}

// DeliveryAttempt is one attempt as the API returns it: the seed's fields,
// its number and the error that made it fail, if any.
type DeliveryAttempt struct {
	ID                 string    `json:"id"`
	DeliveryID         string    `json:"delivery_id"`
	Attempt            int       `json:"attempt"`
	Request            string    `json:"request"`
	Response           string    `json:"response"`
	ResponseStatusCode int       `json:"response_status_code"`
	ExecutionDuration  int       `json:"execution_duration"`
	Success            bool      `json:"success"`
	Error              string    `json:"error"`
	CreatedAt          timestamp `json:"created_at"`
}

func attemptOut(a record.Attempt) DeliveryAttempt {
	return DeliveryAttempt{
		ID: a.ID, DeliveryID: a.DeliveryID, Attempt: a.Attempt, Request: a.Request, Response: a.Response,
		ResponseStatusCode: a.ResponseStatusCode, ExecutionDuration: a.ExecutionDuration,
		Success: a.Success, Error: a.Error, CreatedAt: timestamp(a.CreatedAt),
	}
}

// getOne answers GET /v1/<resource>/{id}: the resource as out shapes it, or
// 404 <resource>_does_not_exists for an ID that cannot exist or is not found.
func getOne[R, O any](c echo.Context, resource string, get func(context.Context, string) (R, error), out func(R) O) error {
	id, ok := pathID(c)
	if !ok {
		return notFound(resource)
	}
	row, err := get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out(row))
}
