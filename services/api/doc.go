// Package api is hammer's REST API (DESIGN "The REST API"): it keeps topics
// and subscriptions in Postgres and their live view in the subscriptions
// bucket, publishes messages to the MESSAGES stream and answers once
// JetStream has them, and reads back the messages, deliveries and attempts
// the recorder writes. Its handlers are the REST door to the application
// layer (package app), which holds every rule; they decode HTTP, call it
// and encode. The hammer binary and cmd/api run it with New and Run.
package api
