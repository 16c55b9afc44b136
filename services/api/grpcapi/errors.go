package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// ErrorCodeKey is the trailer that carries hammer's error code (the REST
// API's "code", such as topic_does_not_exists) next to the gRPC status, so
// a program can switch on it without parsing the message.
const ErrorCodeKey = "hammer-error-code"

// Error is how an error of hammer's REST vocabulary crosses the gRPC door:
// status is the HTTP status the REST API answers with, code its error code
// and message its sentence. The gRPC message is "<code>: <message>", so the
// REST code reaches a client that only shows the status (grpcurl, logs),
// and the code also travels alone in the ErrorCodeKey trailer.
func Error(status int, code, message string) *connect.Error {
	err := connect.NewError(Code(status, code), errors.New(code+": "+message))
	err.Meta().Set(ErrorCodeKey, code)
	return err
}

// Code is the gRPC code for an answer the REST API gives with HTTP status
// and error code:
//
//   - 400 (invalid_<field>), 413 (payload_too_large) and 415: InvalidArgument;
//   - 401 (unauthorized): Unauthenticated; 403: PermissionDenied;
//   - 404 (<resource>_does_not_exists, an unknown ID in the call): NotFound;
//   - 409: AlreadyExists when something with that identity exists
//     (<resource>_already_exists, idempotency_key_reused), FailedPrecondition
//     when the resource's state forbids the call (delivery_pending);
//   - 422 (topic_does_not_exists for a message or subscription naming an
//     unknown topic, a subscription of another topic): FailedPrecondition,
//     the call is well formed but what it refers to must exist first;
//   - 429: ResourceExhausted; 503 (unavailable): Unavailable;
//     504: DeadlineExceeded; other 5xx: Internal.
func Code(status int, code string) connect.Code {
	switch {
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge,
		status == http.StatusUnsupportedMediaType:
		return connect.CodeInvalidArgument
	case status == http.StatusUnauthorized:
		return connect.CodeUnauthenticated
	case status == http.StatusForbidden:
		return connect.CodePermissionDenied
	case status == http.StatusNotFound:
		return connect.CodeNotFound
	case status == http.StatusConflict:
		if strings.HasSuffix(code, "_already_exists") || code == "idempotency_key_reused" {
			return connect.CodeAlreadyExists
		}
		return connect.CodeFailedPrecondition
	case status == http.StatusUnprocessableEntity:
		return connect.CodeFailedPrecondition
	case status == http.StatusTooManyRequests:
		return connect.CodeResourceExhausted
	case status == http.StatusServiceUnavailable:
		return connect.CodeUnavailable
	case status == http.StatusGatewayTimeout:
		return connect.CodeDeadlineExceeded
	case status == http.StatusNotImplemented:
		return connect.CodeUnimplemented
	case status >= 500:
		return connect.CodeInternal
	case status >= 400:
		return connect.CodeInvalidArgument
	}
	return connect.CodeUnknown
}

// internalError is what a client sees of an error that is not one of
// hammer's answers: the cause goes to the log, never to the caller.
func internalError() *connect.Error {
	return Error(http.StatusInternalServerError, "internal_error", "the request failed on our side")
}

// outgoing makes sure err can be shown to the caller: hammer's own answers
// (*connect.Error) and the ends of the caller's context pass; anything else
// becomes internal_error, and cause reports what it was, for the log.
func outgoing(ctx context.Context, err error) (out error, cause error) {
	if err == nil {
		return nil, nil
	}
	if _, ok := errors.AsType[*connect.Error](err); ok {
		return err, nil
	}
	switch {
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return connect.NewError(connect.CodeCanceled, err), nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return connect.NewError(connect.CodeDeadlineExceeded, err), nil
	}
	return internalError(), fmt.Errorf("unexpected error: %w", err)
}
