package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

const (
	headerRequestID = "X-Request-Id"
	keyRequestID    = "request_id"
	maxRequestID    = 128
)

// httpMetrics are the hammer_http_* metrics.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics() httpMetrics {
	return httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hammer_http_requests_total",
			Help: "HTTP requests answered by the API, by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hammer_http_request_duration_seconds",
			Help:    "Time the API took to answer, by method and route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
	}
}

func requestID(c echo.Context) string {
	id, _ := c.Get(keyRequestID).(string)
	return id
}

// validRequestID keeps a caller's X-Request-Id only when it is short and
// plain, so it can go into logs and headers as it is.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// observe gives every request an ID, answers its errors, and then writes
// one log line and the metrics. Nothing from the headers or the body but the
// request ID is logged.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		id := req.Header.Get(headerRequestID)
		if !validRequestID(id) {
			id = ulid.Make().String()
		}
		c.Set(keyRequestID, id)
		c.Response().Header().Set(headerRequestID, id)

		if err := next(c); err != nil {
			c.Error(err)
		}

		status := c.Response().Status
		elapsed := time.Since(start)
		route := s.routeLabel(c)
		method := methodLabel(req.Method)
		s.metrics.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(method, route).Observe(elapsed.Seconds())
		s.log.Info("request",
			zap.String("method", req.Method),
			zap.String("path", req.URL.Path),
			zap.String("route", route),
			zap.Int("status", status),
			zap.Duration("duration", elapsed),
			zap.Int64("bytes_out", c.Response().Size),
			zap.String("request_id", id))
		return nil
	}
}

// recoverPanic turns a panic in a handler into a 500, logged with its stack.
func recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				err = internal(fmt.Errorf("panic: %v\n%s", r, debug.Stack()))
			}
		}()
		return next(c)
	}
}

// routeLabel is the route template a request matched, as the OpenAPI
// document writes it, or "unmatched" (keeping the metric's labels bounded).
func (s *Server) routeLabel(c echo.Context) string {
	if p, ok := s.routes[c.Path()]; ok {
		return p
	}
	return "unmatched"
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// authenticate requires one of HAMMER_API_TOKENS as a bearer token when any
// is set. Tokens are compared as hashes in constant time, against every
// configured token, so neither timing nor length tells anything.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if len(s.tokens) == 0 {
			return next(c)
		}
		scheme, token, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
		match := 0
		for _, t := range s.tokens {
			match |= subtle.ConstantTimeCompare(sum[:], t[:])
		}
		if match != 1 || !strings.EqualFold(scheme, "Bearer") {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="hammer"`)
			return newError(http.StatusUnauthorized, "unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)")
		}
		return next(c)
	}
}
