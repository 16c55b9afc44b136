package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

type openAPIDoc struct {
	OpenAPI    string                               `json:"openapi"`
	Paths      map[string]map[string]map[string]any `json:"paths"`
	Components map[string]map[string]any            `json:"components"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(openAPI, &doc))
	return doc
}

// TestOpenAPIMatchesRoutes fails when a route is missing from the document
// or the document describes a route Echo does not serve.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doc := loadOpenAPI(t)
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.1."), doc.OpenAPI)

	var documented, served []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" || method == "summary" || method == "description" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	for _, r := range b.srv.echo.Routes() {
		served = append(served, r.Method+" "+openAPIPath(r.Path))
	}
	sort.Strings(documented)
	sort.Strings(served)
	require.Equal(t, served, documented)
	require.Contains(t, served, "POST /v1/messages:batch")

	// Every operation answers what the document says it answers, at least
	// the success status, and errors through the shared responses.
	for path, ops := range doc.Paths {
		for method, op := range ops {
			require.NotEmpty(t, op["operationId"], "%s %s", method, path)
			require.NotEmpty(t, op["responses"], "%s %s", method, path)
		}
	}
}

// TestOpenAPIReferencesResolve checks every $ref points at a component.
func TestOpenAPIReferencesResolve(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if k == "$ref" {
					parts := strings.Split(strings.TrimPrefix(x.(string), "#/components/"), "/")
					require.Len(t, parts, 2, x)
					require.Contains(t, doc.Components[parts[0]], parts[1], "dangling %s", x)
					continue
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	var raw map[string]any
	require.NoError(t, json.Unmarshal(openAPI, &raw))
	walk(raw)
}

// TestOpenAPIServedAndInDocs checks /openapi.json serves the embedded
// document and that it is the one in docs/ (run go generate after editing
// docs/openapi.json).
func TestOpenAPIServedAndInDocs(t *testing.T) {
	t.Parallel()
	b := setup(t, withTokens("t"))
	r := b.do("GET", "/openapi.json", "")
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	require.Equal(t, openAPI, r.Body)

	docs, err := os.ReadFile("../../docs/openapi.json")
	require.NoError(t, err)
	require.True(t, bytes.Equal(docs, openAPI), "services/api/openapi.json differs from docs/openapi.json: run go generate ./services/api")
}

// TestOpenAPIErrorCodes checks the error responses the handlers give are
// documented for their operation (a sample of each kind).
func TestOpenAPIErrorCodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	doc := loadOpenAPI(t)
	b.createTopic("t")
	for _, tc := range []struct{ method, path, docPath, body string }{
		{"POST", "/v1/topics", "/v1/topics", `{"topic": {"id": "t", "name": "x"}}`},
		{"POST", "/v1/topics", "/v1/topics", `{"topic": {}}`},
		{"GET", "/v1/topics/x", "/v1/topics/{id}", ""},
		{"PATCH", "/v1/topics/t", "/v1/topics/{id}", `{"topic": {"id": "u"}}`},
		{"POST", "/v1/subscriptions", "/v1/subscriptions", `{"subscription": {"id": "s", "topic_id": "x", "name": "n", "url": "http://127.0.0.1/"}}`},
		{"PATCH", "/v1/subscriptions/x", "/v1/subscriptions/{id}", `{"subscription": {}}`},
		{"DELETE", "/v1/subscriptions/x", "/v1/subscriptions/{id}", ""},
		{"POST", "/v1/messages", "/v1/messages", `{"message": {"topic_id": "x", "data": "d"}}`},
		{"POST", "/v1/messages:batch", "/v1/messages:batch", `{"messages": [{"topic_id": "t", "data": 1}]}`},
		{"GET", "/v1/messages?limit=0", "/v1/messages", ""},
		{"DELETE", "/v1/messages/x", "/v1/messages/{id}", ""},
		{"GET", "/v1/deliveries?status=x", "/v1/deliveries", ""},
		{"GET", "/v1/deliveries/x", "/v1/deliveries/{id}", ""},
		{"GET", "/v1/delivery-attempts?order=x", "/v1/delivery-attempts", ""},
		{"GET", "/v1/delivery-attempts/x", "/v1/delivery-attempts/{id}", ""},
	} {
		r := b.do(tc.method, tc.path, tc.body)
		responses := doc.Paths[tc.docPath][strings.ToLower(tc.method)]["responses"].(map[string]any)
		require.Contains(t, responses, strconv.Itoa(r.Code), "%s %s answered %d: %s", tc.method, tc.path, r.Code, r.Body)
	}
}
