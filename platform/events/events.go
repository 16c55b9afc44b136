// Package events is the contract between hammer's services and anyone else
// who reads its streams: stream and subject names, the one encoding of IDs
// into subject tokens and keys, header names and the versioned payloads.
// Nothing outside this package spells a subject.
package events

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the payload version every event carries as "v". Version 2
// dropped `secret_token` from the target and userinfo from its URL: nothing
// secret travels on the streams. Decode still reads version 1, which the
// streams may hold from before an upgrade.
const Version = 2

// oldestVersion is the oldest payload version Decode accepts. Every field
// of version 1 is in version 2 but `secret_token`, which readers ignore.
const oldestVersion = 1

// HeaderSetVersion is the version of the headers a message on MESSAGES
// carries (Hammer-Version), which payload versions do not change.
const HeaderSetVersion = 1

// Stream names.
const (
	StreamMessages   = "MESSAGES"
	StreamDeliveries = "DELIVERIES"
	StreamEvents     = "EVENTS"
)

// Key-value buckets.
const (
	// BucketSubscriptions holds the live view of every subscription, keyed by
	// EncodeID(subscription ID); the API writes it, deliverers watch it.
	BucketSubscriptions = "hammer_subscriptions"
	// BucketIdempotency holds the Idempotency-Key claims of the last 24 hours.
	BucketIdempotency = "hammer_idempotency"
)

// Subject prefixes and stream subject filters.
const (
	subjectRoot        = "hammer"
	MessagesSubjects   = "hammer.messages.*"
	DeliveriesSubjects = "hammer.deliveries.*"
	EventsSubjects     = "hammer.events.>"
)

// Kinds of events published on the EVENTS stream.
const (
	KindAttempt             = "attempt"
	KindDeliveryCompleted   = "delivery.completed"
	KindDeliveryFailed      = "delivery.failed"
	KindSubscriptionCreated = "subscription.created"
	KindSubscriptionUpdated = "subscription.updated"
	KindSubscriptionDeleted = "subscription.deleted"
)

// Kinds lists every EVENTS kind, in the order the docs present them.
var Kinds = []string{
	KindAttempt, KindDeliveryCompleted, KindDeliveryFailed,
	KindSubscriptionCreated, KindSubscriptionUpdated, KindSubscriptionDeleted,
}

var idEncoding = base64.RawURLEncoding

// EncodeID turns a topic or subscription ID into a single subject token that
// is also a valid key-value key. IDs may hold '.', '+' and '-', which NATS
// would read as token separators or which keys refuse; unpadded base64url
// uses only [A-Za-z0-9_-].
func EncodeID(id string) string {
	return idEncoding.EncodeToString([]byte(id))
}

// DecodeID reverses EncodeID.
func DecodeID(token string) (string, error) {
	b, err := idEncoding.DecodeString(token)
	if err != nil {
		return "", fmt.Errorf("decoding subject token %q: %w", token, err)
	}
	return string(b), nil
}

// MessageSubject is where a message to topicID is published.
func MessageSubject(topicID string) string {
	return subjectRoot + ".messages." + EncodeID(topicID)
}

// DeliverySubject is where a delivery event for subscriptionID is published.
func DeliverySubject(subscriptionID string) string {
	return subjectRoot + ".deliveries." + EncodeID(subscriptionID)
}

// EventSubject is where an event of kind about subscriptionID is published.
func EventSubject(kind, subscriptionID string) string {
	return subjectRoot + ".events." + kind + "." + EncodeID(subscriptionID)
}

// EventFilter matches every event of one kind, for consumers that want only
// that kind (e.g. "delivery.failed").
func EventFilter(kind string) string {
	return subjectRoot + ".events." + kind + ".*"
}

// ErrBadSubject reports a subject that is not one of hammer's.
var ErrBadSubject = errors.New("not a hammer subject")

// ParseEventSubject returns the kind and subscription ID of an EVENTS subject.
func ParseEventSubject(subject string) (kind, subscriptionID string, err error) {
	rest, ok := strings.CutPrefix(subject, subjectRoot+".events.")
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", "", fmt.Errorf("%w: %q", ErrBadSubject, subject)
	}
	subscriptionID, err = DecodeID(rest[i+1:])
	if err != nil {
		return "", "", err
	}
	return rest[:i], subscriptionID, nil
}

// Header names. NATS's own Nats-Msg-Id carries every publish's ID so that
// JetStream drops duplicates inside its window.
const (
	HeaderMsgID          = "Nats-Msg-Id"
	HeaderVersion        = "Hammer-Version"
	HeaderMessageID      = "Hammer-Message-Id"
	HeaderTopicID        = "Hammer-Topic-Id"
	HeaderContentType    = "Hammer-Content-Type"
	HeaderCreatedAt      = "Hammer-Created-At"
	HeaderIdempotencyKey = "Hammer-Idempotency-Key"
)

// DeliveryMsgID is the Nats-Msg-Id of the delivery event that schedules
// attempt n of a delivery: each retry is a new publish, deduplicated on its own.
func DeliveryMsgID(deliveryID string, attempt int) string {
	return deliveryID + "-" + strconv.Itoa(attempt)
}

// TimeLayout is RFC 3339 with exactly six fractional digits: microseconds,
// the precision Postgres stores, written the same way by the API, in
// headers and in the envelope a receiver gets (the seed's
// "2020-05-12T18:56:02.175614Z").
const TimeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Time formats t in UTC with TimeLayout.
func Time(t time.Time) string {
	return t.UTC().Truncate(time.Microsecond).Format(TimeLayout)
}

// ParseTime reads a time written by Time.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parsing time %q: %w", s, err)
	}
	return t.UTC(), nil
}
