package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/hammer-webhooks/hammer/sql/migrations"
)

func TestHelpListsCommandsAndVariables(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.Equal(t, 0, run([]string{"--help"}, &out, &errOut))
	help := out.String()
	for _, cmd := range []string{"dev", "api", "fanout", "deliverer", "recorder", "worker", "migrate up|down|version", "version"} {
		require.Contains(t, help, "\n  "+cmd+" ")
	}
	for _, v := range []string{"HAMMER_DATABASE_URL", "HAMMER_NATS_URL", "HAMMER_HTTP_ADDR (default :8000)", "HAMMER_OPS_ADDR",
		"HAMMER_DATA_DIR (default ./.hammer)", "HAMMER_DEV_NATS_ADDR (default 127.0.0.1:4222)", "HAMMER_LOG_LEVEL", "HAMMER_API_TOKENS",
		"HAMMER_DELIVERY_ALLOWED_CIDRS", "HAMMER_DELIVERY_CONCURRENCY", "HAMMER_MAX_MESSAGE_BYTES", "HAMMER_STREAM_REPLICAS",
		"HAMMER_STREAM_MAX_AGE", "HAMMER_OTLP_ENDPOINT", "HAMMER_DEV_PG_USER", "HAMMER_DEV_PG_BIN_DIRS"} {
		require.Contains(t, help, "\n  "+v)
	}
	require.Equal(t, 1, strings.Count(help, "\n  HAMMER_NATS_URL"), "each variable once")
	require.Contains(t, help, "[dev api fanout deliverer recorder worker]", "shared variables name every command")
	require.Empty(t, errOut.String())
}

func TestCommandLineMistakes(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(nil, &out, &errOut))
	require.Contains(t, errOut.String(), "Usage: hammer <command>")

	errOut.Reset()
	require.Equal(t, 2, run([]string{"serve"}, &out, &errOut))
	require.Contains(t, errOut.String(), `hammer: unknown command "serve"`)

	errOut.Reset()
	require.Equal(t, 2, run([]string{"migrate", "sideways"}, &out, &errOut))
	require.Contains(t, errOut.String(), "want hammer migrate up, down or version")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	p := start(t, nil, "version")
	require.Equal(t, 0, p.wait(30*time.Second))
	require.Regexp(t, `^hammer \S+ \(commit \S+\)\n$`, p.stdout.String())
}

// Services that need a database say so in one line, naming the variable.
func TestMissingDatabaseURLIsOneLine(t *testing.T) {
	t.Parallel()
	for _, cmd := range [][]string{{"api"}, {"fanout"}, {"recorder"}, {"worker"}, {"migrate", "up"}} {
		p := start(t, map[string]string{"HAMMER_OPS_ADDR": testkit.FreeAddr(t), "HAMMER_HTTP_ADDR": testkit.FreeAddr(t)}, cmd...)
		require.Equal(t, 1, p.wait(30*time.Second), cmd)
		out := strings.TrimRight(p.out.String(), "\n")
		require.NotContains(t, out, "\n", out)
		require.Contains(t, out, "HAMMER_DATABASE_URL is not set", cmd)
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t) // migrated already
	env := map[string]string{"HAMMER_DATABASE_URL": db.URL}
	latest := fmt.Sprintf("schema version %d\n", latestMigration(t))
	for _, step := range []struct{ args, want string }{
		{"version", latest},
		{"down", "schema version 0\n"},
		{"up", latest},
		{"up", latest},
	} {
		p := start(t, env, "migrate", step.args)
		require.Equal(t, 0, p.wait(60*time.Second), p.out.String())
		require.Equal(t, step.want, p.stdout.String(), "hammer migrate %s", step.args)
	}
}

// The seed's make run-server and make run-worker: hammer api and hammer
// worker as two processes on a shared PostgreSQL and NATS deliver a message.
func TestAPIAndWorkerProcesses(t *testing.T) {
	t.Parallel()
	db := testkit.NewDB(t)
	n := testkit.NewNATS(t)
	var hits atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	common := func() map[string]string {
		return map[string]string{"HAMMER_DATABASE_URL": db.URL, "HAMMER_NATS_URL": n.URL}
	}
	apiEnv := common()
	apiEnv["HAMMER_HTTP_ADDR"] = testkit.FreeAddr(t)
	api := start(t, apiEnv, "api")
	workerEnv := common()
	workerEnv["HAMMER_OPS_ADDR"] = testkit.FreeAddr(t)
	workerEnv["HAMMER_DELIVERY_ALLOWED_CIDRS"] = "127.0.0.0/8"
	worker := start(t, workerEnv, "worker")
	api.waitHTTP(api.api()+"/readyz", time.Minute)
	worker.waitHTTP("http://"+workerEnv["HAMMER_OPS_ADDR"]+"/readyz", time.Minute)

	var ready struct{ Checks map[string]string }
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, "http://"+workerEnv["HAMMER_OPS_ADDR"]+"/readyz", nil, &ready))
	for _, check := range []string{"fanout.postgres", "deliverer.nats", "recorder.postgres"} {
		require.Equal(t, "ok", ready.Checks[check], "readyz names each service's checks: %v", ready.Checks)
	}

	createTopic(t, api.api(), "orders")
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, api.api()+"/v1/subscriptions", map[string]any{"subscription": map[string]any{
		"id": "local", "topic_id": "orders", "name": "Local", "url": receiver.URL,
	}}, nil))
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, api.api()+"/v1/messages",
		map[string]any{"message": map[string]any{"topic_id": "orders", "data": "hello"}}, nil))
	eventually(t, 30*time.Second, func() bool { return hits.Load() == 1 }, "the receiver got %d requests", hits.Load())

	for _, p := range []*proc{api, worker} {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		require.Equal(t, 0, p.wait(60*time.Second))
	}
}

// latestMigration is the highest version among the embedded migrations.
func latestMigration(t *testing.T) int {
	t.Helper()
	entries, err := fs.ReadDir(migrations.FS, ".")
	require.NoError(t, err)
	latest := 0
	for _, e := range entries {
		prefix, _, ok := strings.Cut(e.Name(), "_")
		if n, err := strconv.Atoi(prefix); ok && err == nil && n > latest {
			latest = n
		}
	}
	require.Positive(t, latest)
	return latest
}
