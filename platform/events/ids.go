package events

import (
	"crypto/rand"
	"crypto/sha256"
	"strconv"
	"time"

	"github.com/oklog/ulid/v2"
)

// NewMessageID returns a fresh ULID for a message accepted at t.
func NewMessageID(t time.Time) string {
	return ulid.MustNew(ulid.Timestamp(t), rand.Reader).String()
}

// DeliveryID derives the ID of the delivery of messageID to subscriptionID.
// Every fanout of the same message computes the same ID, so a redelivered
// message never makes a second delivery. The time part is the message's.
func DeliveryID(messageID string, messageCreatedAt time.Time, subscriptionID string) string {
	return derive(messageCreatedAt, messageID, subscriptionID)
}

// AttemptID derives the ID of attempt n of deliveryID, scheduled at
// scheduledAt (the time carried in the delivery event, which every
// redelivery of that event sees alike). A crash mid-request repeats the same
// attempt and so the same ID.
func AttemptID(deliveryID string, attempt int, scheduledAt time.Time) string {
	return derive(scheduledAt, deliveryID, strconv.Itoa(attempt))
}

// derive builds a ULID whose time is t and whose entropy is a hash of parts.
// Parts are length-prefixed so ("ab","c") and ("a","bc") differ.
func derive(t time.Time, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	var entropy [10]byte
	copy(entropy[:], h.Sum(nil))
	var id ulid.ULID
	_ = id.SetTime(ulid.Timestamp(t)) // fails only after the year 10889
	_ = id.SetEntropy(entropy[:])     // exactly 10 bytes
	return id.String()
}
