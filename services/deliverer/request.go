package deliverer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/hammer-webhooks/hammer/platform/events"
	"github.com/hammer-webhooks/hammer/platform/tracing"
	"github.com/hammer-webhooks/hammer/platform/version"
	"github.com/hammer-webhooks/hammer/services/deliverer/signing"
	"github.com/hammer-webhooks/hammer/services/deliverer/ssrf"
)

// MaxRecordedResponseBody is how much of a response body an attempt keeps,
// the marker of a cut included.
const MaxRecordedResponseBody = 64 << 10

// MaxRecordedRequestBody is how much of the request body an attempt keeps,
// the marker of a cut included. The body is the message's envelope, and the
// message's data is kept in full by MESSAGES and the messages table: the
// attempt need not carry it a second time.
const MaxRecordedRequestBody = 64 << 10

// MaxResponseHeaderBytes bounds the response headers a receiver may send
// (the transport refuses more, which makes a failed attempt), and the
// recorded headers of a request or a response.
const MaxResponseHeaderBytes = 64 << 10

// envelope is the body a receiver gets, as the original hammer sent it.
type envelope struct {
	TopicID        string `json:"topic_id"`
	SubscriptionID string `json:"subscription_id"`
	MessageID      string `json:"message_id"`
	SecretToken    string `json:"secret_token"`
	Data           []byte `json:"data"` // base64, as encoding/json writes bytes
	CreatedAt      string `json:"created_at"`
}

// outgoing is one request to make.
type outgoing struct {
	URL           string
	DeliveryID    string
	SigningSecret string
	Timeout       time.Duration
	Body          []byte
	// RecordedBody is Body as the attempt records it (secret redacted).
	RecordedBody []byte
}

// response is what came of a request.
type response struct {
	Request    string // raw HTTP text of what was sent (or would have been)
	Response   string // raw HTTP text of what came back, body cut at 64 KiB
	Status     int
	RetryAfter string
	Duration   time.Duration
	Success    bool
	Result     string // label of hammer_delivery_attempts_total
	Error      string // empty on success
	// Aborted: the deliverer stopped before the request finished. No
	// attempt is recorded; the event goes back to JetStream and the same
	// attempt is made again.
	Aborted bool
}

// redacted stands for the secret_token in the request an attempt records:
// the recorded request travels on EVENTS, where no secret may.
const redacted = "[redacted]"

// buildEnvelope encodes the body of a request, and the same body as the
// attempt records it, with the secret_token redacted.
func buildEnvelope(sub events.Subscription, ref events.DeliveryRef, m events.Message) (body, recorded []byte, err error) {
	// The token is encoded empty first and spliced in after: the body and
	// its recorded form share one encoding of the (possibly large) data.
	shell, err := json.Marshal(envelope{
		TopicID:        m.TopicID,
		SubscriptionID: ref.SubscriptionID,
		MessageID:      m.ID,
		Data:           m.Data,
		CreatedAt:      events.Time(m.CreatedAt),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the envelope of delivery %s: %w", ref.DeliveryID, err)
	}
	if sub.SecretToken == "" {
		return shell, shell, nil
	}
	token, err := json.Marshal(sub.SecretToken)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the envelope of delivery %s: %w", ref.DeliveryID, err)
	}
	// The fields before secret_token are IDs (no quotes inside), so the
	// first empty secret_token is the envelope's own.
	const field = `"secret_token":`
	at := bytes.Index(shell, []byte(field+`""`)) + len(field)
	head, tail := shell[:at], shell[at+2:]
	return splice(head, token, tail), splice(head, []byte(`"`+redacted+`"`), tail), nil
}

func splice(head, mid, tail []byte) []byte {
	out := make([]byte, 0, len(head)+len(mid)+len(tail))
	return append(append(append(out, head...), mid...), tail...)
}

// newClient is the HTTP client of deliveries: every connection goes through
// the SSRF guard, no proxy from the environment, redirects are returned
// rather than followed, and bodies arrive as the receiver sent them. Up to
// concurrency connections per host stay open between requests: with fewer,
// a busy receiver sees connections closed and dialled again all the time.
func newClient(guard *ssrf.Guard, concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           guard.DialContext,
			ForceAttemptHTTP2:     true,
			DisableCompression:    true,
			MaxIdleConns:          max(1024, concurrency),
			MaxIdleConnsPerHost:   max(32, concurrency),
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Go's default is 10 MiB: headers that size would make an
			// attempt no event can carry.
			MaxResponseHeaderBytes: MaxResponseHeaderBytes,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// send makes one request. stop is the context that ends it early when the
// deliverer must stop; the request's own timeout comes from out.
func send(stop context.Context, client *http.Client, out outgoing, now time.Time) response {
	var r response
	u, err := url.Parse(out.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.Result, r.Error = resultInvalid, fmt.Sprintf("invalid url: %q is not an http or https URL", events.PublicURL(out.URL))
		return r
	}
	ctx, cancel := context.WithTimeout(stop, out.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(out.Body))
	if err != nil {
		r.Result, r.Error = resultInvalid, fmt.Sprintf("invalid url: %v", err)
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hammer/"+version.Version)
	if err := signing.SetHeaders(req.Header, out.SigningSecret, out.DeliveryID, now, out.Body); err != nil {
		r.Request = rawRequest(req, out.Body, out.RecordedBody)
		r.Result, r.Error = resultInvalid, "invalid signing secret: "+err.Error()
		return r
	}
	tracing.InjectHTTP(ctx, req.Header) // traceparent, when tracing is on
	r.Request = rawRequest(req, out.Body, out.RecordedBody)

	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		r.Duration = time.Since(start)
		if stop.Err() != nil {
			r.Aborted = true
			return r
		}
		r.Result, r.Error = classify(ctx, err, out.Timeout)
		return r
	}
	// One byte more than is kept tells a cut body from one that fits.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxRecordedResponseBody+1))
	_ = resp.Body.Close()
	r.Duration = time.Since(start)
	if stop.Err() != nil {
		r.Aborted = true
		return r
	}
	r.Status = resp.StatusCode
	r.RetryAfter = resp.Header.Get("Retry-After")
	r.Response = rawResponse(resp, body)
	switch {
	case isSuccess(resp.StatusCode):
		r.Success, r.Result = true, resultSuccess
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		r.Result = resultRedirect
		r.Error = fmt.Sprintf("redirect not followed: %s", resp.Status)
		if loc := resp.Header.Get("Location"); loc != "" {
			r.Error += " to " + loc
		}
	default:
		r.Result, r.Error = resultHTTPError, fmt.Sprintf("unexpected status %s (success is 200, 201, 202 or 204)", resp.Status)
	}
	return r
}

// isSuccess is exactly the original hammer's rule.
func isSuccess(status int) bool {
	switch status {
	case http.StatusOK, http.StatusCreated, http.StatusAccepted, http.StatusNoContent:
		return true
	}
	return false
}

// ErrorDestinationNotAllowed is the error an attempt records when the SSRF
// guard refused its target.
const ErrorDestinationNotAllowed = "destination_not_allowed"

// classify names what went wrong with a request that got no response, with
// a text that tells an operator which kind of failure it was.
func classify(ctx context.Context, err error, timeout time.Duration) (result, text string) {
	inner := err
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		inner = urlErr.Err
	}
	var (
		refused  *ssrf.RefusedError
		dnsErr   *net.DNSError
		netErr   net.Error
		certErr  *tls.CertificateVerificationError
		recErr   tls.RecordHeaderError
		alertErr tls.AlertError
		authErr  x509.UnknownAuthorityError
		hostErr  x509.HostnameError
		invErr   x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &refused):
		// Generic on purpose (DESIGN "Security, second round"): the
		// resolved address and the reason go to the log only, through
		// the guard's logger.
		return resultRefused, ErrorDestinationNotAllowed
	case errors.As(err, &dnsErr):
		return resultDNSError, "dns failure: " + dnsErr.Error()
	case errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()):
		return resultTimeout, fmt.Sprintf("timeout: no response within %s", timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return resultConnectionRefused, "connection refused: " + inner.Error()
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return resultConnectionReset, "connection reset: the receiver closed the connection without a response: " + inner.Error()
	case errors.As(err, &certErr) || errors.As(err, &recErr) || errors.As(err, &alertErr) ||
		errors.As(err, &authErr) || errors.As(err, &hostErr) || errors.As(err, &invErr):
		return resultTLSError, "tls failure: " + inner.Error()
	default:
		return resultConnectionError, "connection error: " + inner.Error()
	}
}

// rawRequest writes req as HTTP/1.1 text, as the attempt records it: with
// the length of the body sent, and the body as recorded (secret redacted),
// headers and body each cut to what an attempt keeps.
func rawRequest(req *http.Request, body, recorded []byte) string {
	if recorded == nil {
		recorded = body
	}
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", req.Method, req.URL.RequestURI(), req.URL.Host)
	h := req.Header.Clone()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_ = h.Write(&head)
	return rawMessage(head.Bytes(), recorded, MaxRecordedRequestBody)
}

// rawResponse writes resp's status line and headers and the part of its
// body that was read, each cut to what an attempt keeps.
func rawResponse(resp *http.Response, body []byte) string {
	var head bytes.Buffer
	fmt.Fprintf(&head, "%s %s\r\n", resp.Proto, resp.Status)
	h := resp.Header.Clone()
	if resp.ContentLength >= 0 && h.Get("Content-Length") == "" {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	_ = h.Write(&head)
	return rawMessage(head.Bytes(), body, MaxRecordedResponseBody)
}

// rawMessage joins a start line with its headers, and a body, as HTTP text,
// cutting the head at MaxResponseHeaderBytes and the body at maxBody.
func rawMessage(head, body []byte, maxBody int) string {
	head = cut(head, MaxResponseHeaderBytes, "headers")
	body = cut(body, maxBody, "body")
	var b bytes.Buffer
	b.Grow(len(head) + 2 + len(body))
	b.Write(head)
	b.WriteString("\r\n")
	b.Write(body)
	return b.String()
}

// cutMarker ends a recorded text that hammer cut, so that nobody reading
// the attempt takes the text for all the receiver sent or was sent.
const cutMarker = "\r\n[hammer: %s cut here, %d bytes recorded]\r\n"

// cut keeps at most limit bytes of text, the marker included, cutting at a
// UTF-8 boundary.
func cut[T ~string | ~[]byte](text T, limit int, what string) T {
	if len(text) <= limit {
		return text
	}
	keep := max(limit-len(fmt.Sprintf(cutMarker, what, limit)), 0)
	for keep > 0 && !utf8.RuneStart(text[keep]) {
		keep--
	}
	return T(string(text[:keep]) + fmt.Sprintf(cutMarker, what, keep))
}
