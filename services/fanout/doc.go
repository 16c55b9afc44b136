// Package fanout is hammer's fanout service. It consumes accepted messages
// from the MESSAGES stream in batches, loads the subscriptions of every topic
// in a batch with one query, and publishes one delivery event per (message,
// subscription) to DELIVERIES before it acknowledges the messages. Run starts
// it; the all-in-one hammer binary imports it alongside the other services.
package fanout
