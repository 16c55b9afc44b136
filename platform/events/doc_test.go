package events_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/events"
)

// docPath is the event contract as other services read it.
const docPath = "../../docs/events.md"

// payloadTypes are the types a documented example or field table may name.
var payloadTypes = map[string]reflect.Type{
	"Delivery":            reflect.TypeFor[events.Delivery](),
	"Attempt":             reflect.TypeFor[events.Attempt](),
	"Outcome":             reflect.TypeFor[events.Outcome](),
	"SubscriptionChanged": reflect.TypeFor[events.SubscriptionChanged](),
	"DeliveryRef":         reflect.TypeFor[events.DeliveryRef](),
	"Target":              reflect.TypeFor[events.Target](),
	"SubscriptionInfo":    reflect.TypeFor[events.SubscriptionInfo](),
}

// published are the payloads that travel on a stream; each needs an example.
var published = []string{"Delivery", "Attempt", "Outcome", "SubscriptionChanged"}

type example struct {
	kind, subject, lang, body string
}

var exampleBlock = regexp.MustCompile("(?s)<!-- example: (\\S+)(?: (\\S+))? -->\n```(\\w+)\n(.*?)\n```")

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(docPath)
	require.NoError(t, err)
	return string(b)
}

func examples(t *testing.T, doc string) []example {
	t.Helper()
	var out []example
	for _, m := range exampleBlock.FindAllStringSubmatch(doc, -1) {
		out = append(out, example{kind: m[1], subject: m[2], lang: m[3], body: m[4]})
	}
	// Every JSON block on the page is an example this test checks.
	require.Equal(t, strings.Count(doc, "```json\n"), countLang(out, "json"),
		"%s: every ```json block must follow an <!-- example: Type subject --> line", docPath)
	return out
}

func countLang(exs []example, lang string) int {
	n := 0
	for _, e := range exs {
		if e.lang == lang {
			n++
		}
	}
	return n
}

// TestDocExamples holds every JSON example of docs/events.md against the
// payload type it names: it must decode with no unknown field, encode back
// to the same fields and values, and sit on the subject its publisher would
// use. Across the examples of a type, every field of the type must appear.
func TestDocExamples(t *testing.T) {
	t.Parallel()
	doc := readDoc(t)
	seen := map[string]map[string]bool{}
	for _, ex := range examples(t, doc) {
		if ex.kind == "message" {
			continue // TestDocMessageExample
		}
		typ, ok := payloadTypes[ex.kind]
		require.True(t, ok && slices.Contains(published, ex.kind), "%s: example of unknown payload %q", docPath, ex.kind)
		require.Equal(t, "json", ex.lang, "%s: example of %s", docPath, ex.kind)
		t.Run(ex.kind+" "+ex.subject, func(t *testing.T) {
			ptr := reflect.New(typ).Interface()
			dec := json.NewDecoder(strings.NewReader(ex.body))
			dec.DisallowUnknownFields()
			require.NoError(t, dec.Decode(ptr), "the example has a field %s does not have", ex.kind)
			require.NoError(t, events.Decode([]byte(ex.body), reflect.New(typ).Interface()), "events.Decode refuses the example")

			again, err := events.Encode(ptr)
			require.NoError(t, err)
			var documented, encoded any
			require.NoError(t, json.Unmarshal([]byte(ex.body), &documented))
			require.NoError(t, json.Unmarshal(again, &encoded))
			docKeys, codeKeys := keyPaths(documented, ""), keyPaths(encoded, "")
			require.Empty(t, minus(codeKeys, docKeys), "fields %s encodes that the example lacks", ex.kind)
			require.Empty(t, minus(docKeys, codeKeys), "fields of the example that %s does not encode", ex.kind)
			require.Equal(t, documented, encoded, "the example does not survive decoding and encoding")

			require.NotEmpty(t, ex.subject, "the example names no subject")
			require.Equal(t, ex.subject, subjectOf(t, ptr, ex.subject), "the example's subject is not where it would be published")
		})
		if seen[ex.kind] == nil {
			seen[ex.kind] = map[string]bool{}
		}
		var m any
		require.NoError(t, json.Unmarshal([]byte(ex.body), &m))
		for k := range keyPaths(m, "") {
			seen[ex.kind][k] = true
		}
	}
	for _, name := range published {
		require.NotNil(t, seen[name], "%s: no example of %s", docPath, name)
		all := fieldPaths(payloadTypes[name], "")
		require.Empty(t, minus(all, seen[name]), "%s: fields of %s that no example shows", docPath, name)
	}
}

// subjectOf is the subject the publisher of payload would use, given the
// kind the documented subject names.
func subjectOf(t *testing.T, payload any, documented string) string {
	t.Helper()
	switch p := payload.(type) {
	case *events.Delivery:
		return events.DeliverySubject(p.SubscriptionID)
	case *events.Attempt:
		return events.EventSubject(events.KindAttempt, p.SubscriptionID)
	case *events.Outcome:
		return events.EventSubject("delivery."+p.Status, p.SubscriptionID)
	case *events.SubscriptionChanged:
		kind, _, err := events.ParseEventSubject(documented)
		require.NoError(t, err)
		require.True(t, slices.Contains([]string{events.KindSubscriptionCreated, events.KindSubscriptionUpdated, events.KindSubscriptionDeleted}, kind),
			"a subscription change on kind %q", kind)
		return events.EventSubject(kind, p.Subscription.ID)
	}
	t.Fatalf("no subject for %T", payload)
	return ""
}

// TestDocMessageExample reads the documented MESSAGES message back with
// MessageFromHeaders and rebuilds it with NATSMsg: subject, headers and body
// must come out as documented.
func TestDocMessageExample(t *testing.T) {
	t.Parallel()
	var found int
	for _, ex := range examples(t, readDoc(t)) {
		if ex.kind != "message" {
			continue
		}
		found++
		sc := bufio.NewScanner(strings.NewReader(ex.body))
		require.True(t, sc.Scan())
		subject, ok := strings.CutPrefix(sc.Text(), "Subject: ")
		require.True(t, ok, "the message example starts with its subject")
		header := nats.Header{}
		for sc.Scan() && sc.Text() != "" {
			name, value, ok := strings.Cut(sc.Text(), ": ")
			require.True(t, ok, "header line %q", sc.Text())
			header.Add(name, value)
		}
		var body bytes.Buffer
		for sc.Scan() {
			if body.Len() > 0 {
				body.WriteByte('\n')
			}
			body.WriteString(sc.Text())
		}
		m, err := events.MessageFromHeaders(header, body.Bytes())
		require.NoError(t, err)
		again := m.NATSMsg()
		require.Equal(t, subject, again.Subject)
		require.Equal(t, header, again.Header, "headers as documented and as NATSMsg sets them")
		require.Equal(t, body.String(), string(again.Data))
	}
	require.Equal(t, 1, found, "%s: one <!-- example: message --> block", docPath)
}

var fieldsTable = regexp.MustCompile("(?s)<!-- fields: ([A-Za-z ]+) -->\n\\| Field \\|[^\n]*\n\\|[- |]+\n((?:\\|[^\n]*\n)+)")
var fieldRow = regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|")

// TestDocFieldTables holds each field table to the JSON fields the types it
// names declare themselves (embedded structs have their own table), both ways.
func TestDocFieldTables(t *testing.T) {
	t.Parallel()
	tables := map[string]bool{}
	for _, m := range fieldsTable.FindAllStringSubmatch(readDoc(t), -1) {
		want := map[string]bool{}
		for _, name := range strings.Fields(m[1]) {
			typ, ok := payloadTypes[name]
			require.True(t, ok, "%s: field table of unknown type %q", docPath, name)
			tables[name] = true
			for _, f := range ownFields(typ) {
				want[f] = true
			}
		}
		got := map[string]bool{}
		for _, row := range fieldRow.FindAllStringSubmatch(m[2], -1) {
			got[row[1]] = true
		}
		require.Empty(t, minus(want, got), "%s: fields of %s missing from its table", docPath, m[1])
		require.Empty(t, minus(got, want), "%s: fields in the table of %s that the code does not have", docPath, m[1])
	}
	for name := range payloadTypes {
		require.True(t, tables[name], "%s: no <!-- fields: %s --> table", docPath, name)
	}
}

var encodeRow = regexp.MustCompile("(?m)^\\| `([^`]+)` \\| `([^`]+)` \\| `([^`]+)` \\|$")

// TestDocNames checks the names the page quotes: the ID encoding table, every
// stream, kind and header.
func TestDocNames(t *testing.T) {
	t.Parallel()
	doc := readDoc(t)
	begin, end := strings.Index(doc, "<!-- encode-id:begin -->"), strings.Index(doc, "<!-- encode-id:end -->")
	require.True(t, begin >= 0 && end > begin, "%s: no encode-id table", docPath)
	rows := encodeRow.FindAllStringSubmatch(doc[begin:end], -1)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		require.Equal(t, r[2], events.EncodeID(r[1]), "token of %q", r[1])
		id, err := events.DecodeID(r[2])
		require.NoError(t, err)
		require.Equal(t, r[1], id)
		require.Equal(t, r[3], events.MessageSubject(r[1]))
	}

	quoted := []string{
		events.StreamMessages, events.StreamDeliveries, events.StreamEvents, events.EventsSubjects,
		strings.Replace(events.MessagesSubjects, "*", "<topic>", 1),
		strings.Replace(events.DeliveriesSubjects, "*", "<subscription>", 1),
		events.HeaderMsgID, events.HeaderVersion, events.HeaderMessageID, events.HeaderTopicID,
		events.HeaderContentType, events.HeaderCreatedAt, events.HeaderIdempotencyKey, "traceparent",
		events.ReasonMaxAttempts, events.ReasonSubscriptionDeleted, events.ReasonMessageDeleted,
		events.StatusPending, events.StatusCompleted, events.StatusFailed,
		events.EventFilter(events.KindDeliveryFailed),
	}
	for _, kind := range events.Kinds {
		quoted = append(quoted, "hammer.events."+kind+".<subscription>")
	}
	for _, q := range quoted {
		require.Contains(t, doc, "`"+q+"`", "%s does not quote %s", docPath, q)
	}
	require.Contains(t, doc, `"v": `+jsonInt(events.Version))
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// keyPaths lists the keys of a decoded JSON object, nested ones as a.b.
func keyPaths(v any, prefix string) map[string]bool {
	out := map[string]bool{}
	obj, ok := v.(map[string]any)
	if !ok {
		return out
	}
	for k, child := range obj {
		out[prefix+k] = true
		for p := range keyPaths(child, prefix+k+".") {
			out[p] = true
		}
	}
	return out
}

// fieldPaths lists the JSON keys typ can encode, nested objects as a.b.
func fieldPaths(typ reflect.Type, prefix string) map[string]bool {
	out := map[string]bool{}
	for i := range typ.NumField() {
		f := typ.Field(i)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && ft.Kind() == reflect.Struct {
			for p := range fieldPaths(ft, prefix) {
				out[p] = true
			}
			continue
		}
		name := jsonName(f)
		if name == "" {
			continue
		}
		out[prefix+name] = true
		if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Time]() {
			for p := range fieldPaths(ft, prefix+name+".") {
				out[p] = true
			}
		}
	}
	return out
}

// ownFields lists the JSON keys typ declares itself, without embedded structs.
func ownFields(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Anonymous {
			continue
		}
		if name := jsonName(f); name != "" {
			out = append(out, name)
		}
	}
	return out
}

func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name
}

// minus is the sorted keys of a that b lacks.
func minus(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
