// Package observability runs hammer's services in one test process, on a
// real PostgreSQL and a real JetStream, and checks what operators see of a
// message's way through them: one trace from the API call to the
// receiver's request, and the metrics each service serves.
package observability
