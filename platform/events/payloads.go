package events

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	json "github.com/goccy/go-json"
	"github.com/nats-io/nats.go"

	"github.com/hammer-webhooks/hammer/platform/subscription"
)

// Message is a message as it travels on MESSAGES: the data is the NATS
// message body, untouched; everything else rides in headers.
type Message struct {
	ID             string
	TopicID        string
	ContentType    string
	IdempotencyKey string
	CreatedAt      time.Time
	Data           []byte
}

// NATSMsg builds the publish of m, deduplicated by its ID.
func (m Message) NATSMsg() *nats.Msg {
	msg := nats.NewMsg(MessageSubject(m.TopicID))
	msg.Data = m.Data
	msg.Header.Set(HeaderMsgID, m.ID)
	msg.Header.Set(HeaderVersion, strconv.Itoa(HeaderSetVersion))
	msg.Header.Set(HeaderMessageID, m.ID)
	msg.Header.Set(HeaderTopicID, m.TopicID)
	msg.Header.Set(HeaderContentType, m.ContentType)
	msg.Header.Set(HeaderCreatedAt, Time(m.CreatedAt))
	if m.IdempotencyKey != "" {
		msg.Header.Set(HeaderIdempotencyKey, m.IdempotencyKey)
	}
	return msg
}

// MessageFromHeaders reads a message back from its headers and body, as
// delivered by a consumer or returned by a direct get.
func MessageFromHeaders(h nats.Header, data []byte) (Message, error) {
	m := Message{
		ID:             h.Get(HeaderMessageID),
		TopicID:        h.Get(HeaderTopicID),
		ContentType:    h.Get(HeaderContentType),
		IdempotencyKey: h.Get(HeaderIdempotencyKey),
		Data:           data,
	}
	if m.ID == "" || m.TopicID == "" {
		return Message{}, fmt.Errorf("message without %s or %s header", HeaderMessageID, HeaderTopicID)
	}
	t, err := ParseTime(h.Get(HeaderCreatedAt))
	if err != nil {
		return Message{}, fmt.Errorf("message %s: %w", m.ID, err)
	}
	m.CreatedAt = t
	return m, nil
}

// Target is what a delivery is sent to and under which limits, as the step
// that published the event saw the subscription: only its public parts (no
// secret_token, no userinfo in the URL), since other services read events.
type Target struct {
	URL                    string `json:"url"`
	MaxDeliveryAttempts    int    `json:"max_delivery_attempts"`
	DeliveryAttemptDelay   int    `json:"delivery_attempt_delay"`
	DeliveryAttemptTimeout int    `json:"delivery_attempt_timeout"`
}

// DeliveryRef names one delivery and what it belongs to.
type DeliveryRef struct {
	DeliveryID     string `json:"delivery_id"`
	MessageID      string `json:"message_id"`
	TopicID        string `json:"topic_id"`
	SubscriptionID string `json:"subscription_id"`
	// MessageSequence is the message's sequence in MESSAGES, where the
	// deliverer reads its body.
	MessageSequence  uint64    `json:"message_sequence"`
	MessageCreatedAt time.Time `json:"message_created_at"`
	// DeliveryCreatedAt is when fanout created the delivery.
	DeliveryCreatedAt time.Time `json:"delivery_created_at"`
}

// Delivery is the event on DELIVERIES that asks for attempt Attempt of a
// delivery, not before NotBefore. fanout publishes attempt 1; the deliverer
// publishes attempt n+1 after a failed attempt n.
type Delivery struct {
	V int `json:"v"`
	DeliveryRef
	Target
	Attempt   int       `json:"attempt"`
	NotBefore time.Time `json:"not_before"`
}

// Delivery statuses, as stored and returned by the API.
const (
	StatusPending   = "pending"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// Reasons a delivery failed.
const (
	ReasonMaxAttempts         = "max_attempts"
	ReasonSubscriptionDeleted = "subscription_deleted"
	ReasonMessageDeleted      = "message_deleted"
)

// Attempt is the event on EVENTS for one attempt made, published before the
// delivery event that caused it is acknowledged.
type Attempt struct {
	V int `json:"v"`
	DeliveryRef
	Target
	AttemptID          string    `json:"attempt_id"`
	Attempt            int       `json:"attempt"`
	ScheduledAt        time.Time `json:"scheduled_at"`
	Request            string    `json:"request"`
	Response           string    `json:"response"`
	ResponseStatusCode int       `json:"response_status_code"`
	ExecutionDuration  int64     `json:"execution_duration"` // milliseconds
	Success            bool      `json:"success"`
	Error              string    `json:"error"`
	CreatedAt          time.Time `json:"created_at"`
	// Status is the delivery's status after this attempt; NextAttemptAt is
	// set when it is still pending.
	Status        string     `json:"status"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
}

// Outcome is the event on EVENTS that ends a delivery: delivery.completed or
// delivery.failed.
type Outcome struct {
	V int `json:"v"`
	DeliveryRef
	Target
	Status   string    `json:"status"`
	Reason   string    `json:"reason,omitempty"`
	Attempts int       `json:"attempts"`
	At       time.Time `json:"at"`
}

// Subscription is the live view of a subscription kept in
// BucketSubscriptions: hammer's one subscription model
// (platform/subscription), whose JSON is the bucket's value, with what the
// events make of it.
type Subscription subscription.Subscription

// Target is the public part of s a delivery is sent with.
func (s Subscription) Target() Target {
	return Target{
		URL:                    PublicURL(s.URL),
		MaxDeliveryAttempts:    s.MaxDeliveryAttempts,
		DeliveryAttemptDelay:   s.DeliveryAttemptDelay,
		DeliveryAttemptTimeout: s.DeliveryAttemptTimeout,
	}
}

// SubscriptionInfo is a subscription as told to other services: no secrets.
type SubscriptionInfo struct {
	ID                     string    `json:"id"`
	TopicID                string    `json:"topic_id"`
	Name                   string    `json:"name"`
	URL                    string    `json:"url"`
	MaxDeliveryAttempts    int       `json:"max_delivery_attempts"`
	DeliveryAttemptDelay   int       `json:"delivery_attempt_delay"`
	DeliveryAttemptTimeout int       `json:"delivery_attempt_timeout"`
	MaxConcurrentRequests  int       `json:"max_concurrent_requests"`
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at"`
}

// Info drops s's secrets.
func (s Subscription) Info() SubscriptionInfo {
	return SubscriptionInfo{
		ID: s.ID, TopicID: s.TopicID, Name: s.Name, URL: PublicURL(s.URL),
		MaxDeliveryAttempts:    s.MaxDeliveryAttempts,
		DeliveryAttemptDelay:   s.DeliveryAttemptDelay,
		DeliveryAttemptTimeout: s.DeliveryAttemptTimeout,
		MaxConcurrentRequests:  s.MaxConcurrentRequests,
		CreatedAt:              s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
}

// SubscriptionChanged is the event on EVENTS for subscription.created,
// subscription.updated and subscription.deleted.
type SubscriptionChanged struct {
	V            int              `json:"v"`
	Subscription SubscriptionInfo `json:"subscription"`
	At           time.Time        `json:"at"`
}

// Encode marshals an event payload, setting its version. Events go through
// goccy/go-json: an attempt, whose request and response are JSON text
// inside a JSON string, decodes five times faster than with encoding/json,
// and the bytes are the same (TestEventsEncodeAndDecodeAsTheStandardLibraryDoes).
func Encode(payload any) ([]byte, error) {
	switch p := payload.(type) {
	case *Delivery:
		p.V = Version
	case *Attempt:
		p.V = Version
	case *Outcome:
		p.V = Version
	case *SubscriptionChanged:
		p.V = Version
	default:
		return nil, fmt.Errorf("encoding %T: not an event payload (pass a pointer)", payload)
	}
	return json.Marshal(payload)
}

// Decode unmarshals an event payload and refuses versions it does not know.
// A payload is parsed once: the version is read from the decoded payload,
// and only an event that is not of this version is parsed again, for its
// version alone (a newer payload may not fit this one's fields).
func Decode(data []byte, payload any) error {
	v := versionField(payload)
	if v == nil {
		return decodeChecked(data, payload)
	}
	*v = 0 // an event without "v" must not pass for a reused payload's version
	err := json.Unmarshal(data, payload)
	if err == nil && known(*v) {
		return nil
	}
	var head struct {
		V int `json:"v"`
	}
	if herr := json.Unmarshal(data, &head); herr == nil && !known(head.V) {
		return versionError(head.V)
	}
	if err == nil {
		err = versionError(*v)
	}
	return fmt.Errorf("decoding event: %w", err)
}

// decodeChecked reads the version on its own first, for a payload type
// whose "v" Decode cannot reach.
func decodeChecked(data []byte, payload any) error {
	var head struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("decoding event: %w", err)
	}
	if !known(head.V) {
		return versionError(head.V)
	}
	if err := json.Unmarshal(data, payload); err != nil {
		return fmt.Errorf("decoding event: %w", err)
	}
	return nil
}

// known reports whether Decode reads payloads of version v.
func known(v int) bool {
	return v >= oldestVersion && v <= Version
}

func versionError(v int) error {
	return fmt.Errorf("decoding event: version %d, want %d to %d", v, oldestVersion, Version)
}

// versionField is the "v" of an event payload, or nil for anything else.
func versionField(payload any) *int {
	switch p := payload.(type) {
	case *Delivery:
		return &p.V
	case *Attempt:
		return &p.V
	case *Outcome:
		return &p.V
	case *SubscriptionChanged:
		return &p.V
	}
	return nil
}

// PublicURL is raw without its userinfo (user and password), which must not
// travel on a stream or reach a log. A URL that does not parse is returned
// as it is only when it holds no "@" (an unparsable URL with one could hide
// credentials); otherwise it becomes "".
func PublicURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if strings.Contains(raw, "@") {
			return ""
		}
		return raw
	}
	if u.User == nil {
		return raw
	}
	u.User = nil
	return u.String()
}
