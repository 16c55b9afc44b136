package observability_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/platform/tracing"
)

var (
	recordOnce sync.Once
	recorded   *tracetest.SpanRecorder
)

// spans turns tracing on for this process with an in-memory exporter, as
// HAMMER_OTLP_ENDPOINT would with a collector.
func spans() *tracetest.SpanRecorder {
	recordOnce.Do(func() {
		recorded = tracetest.NewSpanRecorder()
		tracing.Use(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorded)))
	})
	return recorded
}

// inTrace returns the ended spans of one trace by name.
func inTrace(rec *tracetest.SpanRecorder, id string) map[string][]sdktrace.ReadOnlySpan {
	out := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID().String() == id {
			out[s.Name()] = append(out[s.Name()], s)
		}
	}
	return out
}

var traceparent = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-01$`)

// One message's way is one trace: the API call, fanout, the deliverer and
// its request, whose traceparent the receiver gets. A caller's own
// traceparent is continued, and a batch's messages share its trace.
func TestOneTraceFromAPIToReceiver(t *testing.T) {
	t.Parallel()
	rec := spans()
	s := start(t)
	rcv := newReceiver(t)
	subscribe(t, s, "traced", rcv.URL+"/hook")

	s.MustCall(t, http.MethodPost, "/v1/messages", `{"message": {"topic_id": "traced", "data": "hello"}}`, http.StatusOK)
	testkit.Eventually(t, 15*time.Second, func() bool { return len(rcv.got()) == 1 }, "the receiver got no request")
	m := traceparent.FindStringSubmatch(rcv.got()[0].Get("traceparent"))
	require.NotNil(t, m, "the receiver's traceparent: %q", rcv.got()[0].Get("traceparent"))
	traceID, requestSpan := m[1], m[2]

	// The deliverer's span ends once the attempt's events are stored.
	var path map[string][]sdktrace.ReadOnlySpan
	names := []string{"POST /v1/messages", "fanout message", "deliver", "POST"}
	testkit.Eventually(t, 10*time.Second, func() bool {
		path = inTrace(rec, traceID)
		for _, n := range names {
			if len(path[n]) == 0 {
				return false
			}
		}
		return true
	}, "the trace lacks a step")
	for n := range path {
		require.Contains(t, names, n, "a span of the trace that no step should make")
	}
	api, post := path["POST /v1/messages"][0], path["POST"][0]
	require.Len(t, path["POST /v1/messages"], 1)
	require.Len(t, path["POST"], 1, "one request")
	require.False(t, api.Parent().IsValid(), "the trace starts at the API call")
	require.Equal(t, trace.SpanKindServer, api.SpanKind())
	fanouts := map[trace.SpanID]bool{} // more than one only if fanout handled the message again
	for _, fan := range path["fanout message"] {
		require.Equal(t, api.SpanContext().SpanID(), fan.Parent().SpanID(), "fanout continues the API's span")
		require.Equal(t, trace.SpanKindConsumer, fan.SpanKind())
		fanouts[fan.SpanContext().SpanID()] = true
	}
	var deliver sdktrace.ReadOnlySpan
	for _, d := range path["deliver"] {
		require.True(t, fanouts[d.Parent().SpanID()], "the deliverer continues fanout's span")
		if d.SpanContext().SpanID() == post.Parent().SpanID() {
			deliver = d
		}
	}
	require.NotNil(t, deliver, "the request is a child of a deliver span")
	require.Equal(t, trace.SpanKindClient, post.SpanKind())
	require.Equal(t, post.SpanContext().SpanID().String(), requestSpan, "the receiver's traceparent names the request's span")

	// A caller that traces its own request: hammer's spans join its trace.
	const callerTrace = "0af7651916cd43dd8448eb211c80319c"
	code, body := s.Call(t, http.MethodPost, "/v1/messages", `{"message": {"topic_id": "traced", "data": "again"}}`,
		http.Header{"Traceparent": {"00-" + callerTrace + "-b7ad6b7169203331-01"}})
	require.Equal(t, http.StatusOK, code, "%s", body)
	testkit.Eventually(t, 15*time.Second, func() bool { return len(rcv.got()) == 2 }, "the receiver got no second request")
	m = traceparent.FindStringSubmatch(rcv.got()[1].Get("traceparent"))
	require.NotNil(t, m)
	require.Equal(t, callerTrace, m[1])

	// A batch is one API call: its messages share its trace.
	s.MustCall(t, http.MethodPost, "/v1/messages:batch", `{"messages": [{"topic_id": "traced", "data": "b1"}, {"topic_id": "traced", "data": "b2"}]}`, http.StatusOK)
	testkit.Eventually(t, 15*time.Second, func() bool { return len(rcv.got()) == 4 }, "the receiver did not get the batch")
	ids := map[string]bool{}
	for _, h := range rcv.got()[2:] {
		m := traceparent.FindStringSubmatch(h.Get("traceparent"))
		require.NotNil(t, m)
		ids[m[1]] = true
	}
	require.Len(t, ids, 1, "the batch's messages are in one trace")
	for id := range ids {
		testkit.Eventually(t, 10*time.Second, func() bool {
			return len(inTrace(rec, id)["POST /v1/messages:batch"]) == 1 && len(inTrace(rec, id)["fanout message"]) == 2
		}, "the batch's trace lacks its API span or a fanout span")
	}
}

// metricRow is a row of the metrics table in docs/operations.md.
type metricRow struct {
	name      string
	labeled   bool
	processes []string
}

var metricsRow = regexp.MustCompile("(?m)^\\| `(hammer_[a-z0-9_]+)` \\| ([^|]+) \\| ([^|]+) \\|")

func documentedMetrics(t *testing.T) []metricRow {
	t.Helper()
	doc, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	begin := strings.Index(string(doc), "<!-- metrics:begin -->")
	end := strings.Index(string(doc), "<!-- metrics:end -->")
	require.True(t, begin >= 0 && end > begin)
	var out []metricRow
	for _, m := range metricsRow.FindAllStringSubmatch(string(doc)[begin:end], -1) {
		var procs []string
		for _, p := range strings.Split(m[3], ",") {
			procs = append(procs, strings.TrimSpace(p))
		}
		out = append(out, metricRow{name: m[1], labeled: strings.Contains(m[2], ":"), processes: procs})
	}
	require.NotEmpty(t, out)
	return out
}

// onlyWhenItHappens are labeled metrics that show no series until their
// event occurs, which a plain delivery does not cause.
var onlyWhenItHappens = map[string]bool{
	"hammer_delivery_held_total":                  true,
	"hammer_jetstream_consumer_info_errors_total": true,
}

// Every service serves on /metrics the Go runtime and process metrics and
// the hammer_* metrics the operations guide lists for it, including how far
// behind its JetStream consumers are.
func TestEveryServiceServesItsMetrics(t *testing.T) {
	t.Parallel()
	s := start(t)
	rcv := newReceiver(t)
	subscribe(t, s, "metered", rcv.URL)
	msg := s.MustCall(t, http.MethodPost, "/v1/messages", `{"message": {"topic_id": "metered", "data": "m"}}`, http.StatusOK)
	testkit.Eventually(t, 15*time.Second, func() bool {
		list := s.MustCall(t, http.MethodGet, "/v1/deliveries?message_id="+msg["id"].(string), "", http.StatusOK)
		d, _ := list["deliveries"].([]any)
		return len(d) == 1 && d[0].(map[string]any)["status"] == "completed"
	}, "the delivery was not recorded completed")

	consumers := map[string][][2]string{
		"fanout":    {{"MESSAGES", "fanout"}},
		"deliverer": {{"DELIVERIES", "deliverer"}},
		"recorder":  {{"MESSAGES", "recorder-messages"}, {"DELIVERIES", "recorder-deliveries"}, {"EVENTS", "recorder-events"}},
	}
	rows := documentedMetrics(t)
	for _, service := range []string{"api", "fanout", "deliverer", "recorder"} {
		body := s.Metrics(t, service)
		for _, want := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total"} {
			require.Contains(t, body, "\n# TYPE "+want+" ", "%s: %s", service, want)
		}
		for _, row := range rows {
			if !contains(row.processes, service) || onlyWhenItHappens[row.name] {
				continue
			}
			require.Contains(t, body, "\n# TYPE "+row.name+" ", "%s does not serve %s", service, row.name)
		}
		for _, c := range consumers[service] {
			// Everything was handled, so each backlog drains to zero (the
			// values are read from NATS at most once a second).
			for _, gauge := range []string{"pending", "ack_pending"} {
				series := fmt.Sprintf("hammer_jetstream_consumer_%s{consumer=%q,stream=%q} 0\n", gauge, c[1], c[0])
				testkit.Eventually(t, 10*time.Second, func() bool {
					return strings.Contains(s.Metrics(t, service), series)
				}, "%s: no %s", service, strings.TrimSpace(series))
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
