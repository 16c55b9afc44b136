package app

import (
	"errors"
	"fmt"

	"github.com/hammer-webhooks/hammer/sql/store"
)

// Kind is what went wrong, as every door translates it: REST into an HTTP
// status, gRPC into a status code.
type Kind int

const (
	// Invalid input: 400, InvalidArgument.
	Invalid Kind = iota + 1
	// NotFound: the ID in the path names nothing; 404, NotFound.
	NotFound
	// Conflict: it exists already, or the request clashes with an earlier
	// one; 409, AlreadyExists.
	Conflict
	// UnknownParent: the input names a topic that does not exist; 422,
	// FailedPrecondition.
	UnknownParent
	// TooLarge: the input is over a size limit; 413, InvalidArgument.
	TooLarge
	// Unavailable: NATS or Postgres cannot serve now; 503, Unavailable.
	Unavailable
	// Internal: a failure on hammer's side; 500, Internal.
	Internal
)

// Error is every error the application returns: a kind for the door, the
// REST error code (invalid_<field>, topic_does_not_exists, …) that both
// doors show, a sentence for the person reading it and, for the log only,
// the cause. Index names the item of a batch the error is about.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Index   *int
	Cause   error
}

// Error is the code and message, and the cause for the log.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return e.Code + ": " + e.Message
}

// Unwrap is the cause, so errors.Is finds a store or NATS error under it.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf is an error of kind k with code and a formatted message.
func Errorf(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// InvalidField is invalid input about one field: code invalid_<field>.
func InvalidField(field, format string, args ...any) *Error {
	return Errorf(Invalid, "invalid_"+field, format, args...)
}

func notFound(resource string) *Error {
	return Errorf(NotFound, resource+"_does_not_exists", "%s does not exist", resource)
}

func alreadyExists(resource string) *Error {
	return Errorf(Conflict, resource+"_already_exists", "a %s with this id already exists", resource)
}

func unknownTopic(id string) *Error {
	return Errorf(UnknownParent, "topic_does_not_exists", "topic %q does not exist", id)
}

// TooLargeError is input over a size limit: code payload_too_large.
func TooLargeError(format string, args ...any) *Error {
	return Errorf(TooLarge, "payload_too_large", format, args...)
}

// UnavailableError is a failure worth retrying shortly: code unavailable.
func UnavailableError(cause error) *Error {
	e := Errorf(Unavailable, "unavailable", "the service cannot accept this request now; try again shortly")
	e.Cause = cause
	return e
}

// InternalError is a failure on hammer's side: code internal_error.
func InternalError(cause error) *Error {
	e := Errorf(Internal, "internal_error", "the request failed on our side")
	e.Cause = cause
	return e
}

func reused() *Error {
	return Errorf(Conflict, "idempotency_key_reused", "this idempotency key was used with a different message within the last 24 hours")
}

// AtIndex marks e as being about item i of a batch.
func AtIndex(e *Error, i int) *Error {
	e.Index = &i
	e.Message = fmt.Sprintf("messages[%d]: %s", i, e.Message)
	return e
}

// storeError turns a store error into an answer: the caller has already
// handled the errors that mean something for its resource.
func storeError(err error) *Error {
	if errors.Is(err, store.ErrUnavailable) {
		return UnavailableError(err)
	}
	return InternalError(err)
}

// lookupError is the answer to reading resource by ID.
func lookupError(resource string, err error) *Error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(resource)
	}
	return storeError(err)
}
