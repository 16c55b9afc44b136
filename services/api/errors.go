package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/hammer-webhooks/hammer/services/api/app"
)

// Error is the body of every answer that is not a success: a stable code a
// program can switch on and a sentence for the person reading it. Index names
// the item of a batch the error is about.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Index   *int   `json:"index,omitempty"`
}

// apiError is an Error on its way out, with its HTTP status and, for the log
// only, the cause.
type apiError struct {
	status int
	body   Error
	cause  error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%d %s: %s: %v", e.status, e.body.Code, e.body.Message, e.cause)
	}
	return fmt.Sprintf("%d %s: %s", e.status, e.body.Code, e.body.Message)
}

func newError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, body: Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

// invalid is a 400 about one field of the input: code invalid_<field>.
func invalid(field, format string, args ...any) *apiError {
	return fromApp(app.InvalidField(field, format, args...))
}

// notFound is the 404 for a path ID that cannot exist.
func notFound(resource string) *apiError {
	return newError(http.StatusNotFound, resource+"_does_not_exists", "%s does not exist", resource)
}

func tooLarge(format string, args ...any) *apiError {
	return fromApp(app.TooLargeError(format, args...))
}

func internal(cause error) *apiError {
	return fromApp(app.InternalError(cause))
}

// statuses are the HTTP answers to the application's kinds of error.
var statuses = map[app.Kind]int{
	app.Invalid:       http.StatusBadRequest,
	app.NotFound:      http.StatusNotFound,
	app.Conflict:      http.StatusConflict,
	app.UnknownParent: http.StatusUnprocessableEntity,
	app.TooLarge:      http.StatusRequestEntityTooLarge,
	app.Unavailable:   http.StatusServiceUnavailable,
	app.Internal:      http.StatusInternalServerError,
}

// fromApp is the REST answer to an application error; nil for nil.
func fromApp(e *app.Error) *apiError {
	if e == nil {
		return nil
	}
	status, ok := statuses[e.Kind]
	if !ok {
		status = http.StatusInternalServerError
	}
	return &apiError{status: status, body: Error{Code: e.Code, Message: e.Message, Index: e.Index}, cause: e.Cause}
}

// handleError is Echo's error handler: every error a handler, a middleware
// or the router returns becomes a JSON Error.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var ae *apiError
	var appErr *app.Error
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &appErr):
		ae = fromApp(appErr)
	case errors.As(err, &he):
		ae = fromEchoError(he)
	default:
		ae = internal(err)
	}
	if ae.status >= 500 {
		s.log.Error("request failed",
			zap.String("request_id", requestID(c)),
			zap.String("code", ae.body.Code),
			zap.Error(ae))
	}
	if ae.status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", "1")
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(ae.status)
	} else {
		err = c.JSON(ae.status, ae.body)
	}
	if err != nil {
		s.log.Debug("writing error answer", zap.Error(err))
	}
}

func fromEchoError(he *echo.HTTPError) *apiError {
	switch he.Code {
	case http.StatusNotFound:
		return newError(http.StatusNotFound, "not_found", "no such path")
	case http.StatusMethodNotAllowed:
		return newError(http.StatusMethodNotAllowed, "method_not_allowed", "this path does not take that method")
	case http.StatusRequestEntityTooLarge:
		return tooLarge("the request body is too large")
	case http.StatusUnauthorized:
		return newError(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required")
	}
	if he.Code >= 500 {
		return internal(he)
	}
	return newError(he.Code, "invalid_request", "%v", he.Message)
}
