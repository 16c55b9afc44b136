// Package pipeline runs hammer's four services in one test process, on a
// real PostgreSQL and a real JetStream, and checks the whole path of a
// message through the public API.
package pipeline
