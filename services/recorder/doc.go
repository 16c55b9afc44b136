// Package recorder is hammer's recorder service: it projects the MESSAGES,
// DELIVERIES and EVENTS streams into Postgres's messages, deliveries and
// delivery_attempts tables, in batches of bounded size and latency, one
// transaction per batch, acknowledging the events only after the commit.
// Every write is idempotent and monotonic, so replaying the streams from the
// start leaves the tables as they are. Run starts it.
package recorder
