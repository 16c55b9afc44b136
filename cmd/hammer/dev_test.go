package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/stretchr/testify/require"
)

// A first hammer dev on an empty data directory creates everything, serves
// ops and the API, and stops on SIGINT leaving nothing behind; a second
// finds the same data and stops on SIGTERM just as cleanly.
func TestDevStopsCleanlyAndKeepsData(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	env := devEnv(t, dir)

	first := startDev(t, env)
	createTopic(t, first.api(), "person")
	pid := postmasterPid(t, dir)
	require.True(t, running(pid))
	require.NoError(t, first.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, first.wait(90*time.Second), "exit code after SIGINT")
	requireNothingLeft(t, dir, pid, env["HAMMER_HTTP_ADDR"], env["HAMMER_OPS_ADDR"], env["HAMMER_DEV_NATS_ADDR"])

	second := startDev(t, env)
	var topic struct{ ID, Name string }
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, second.api()+"/v1/topics/person", nil, &topic))
	require.Equal(t, "person", topic.ID, "the topic survives a restart")
	pid = postmasterPid(t, dir)
	require.NoError(t, second.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, second.wait(90*time.Second), "exit code after SIGTERM")
	requireNothingLeft(t, dir, pid, env["HAMMER_HTTP_ADDR"], env["HAMMER_OPS_ADDR"], env["HAMMER_DEV_NATS_ADDR"])
}

// A hammer dev killed with SIGKILL leaves its PostgreSQL running; the next
// start finds it, replaces it (one postmaster, never two) and works.
func TestDevRecoversAfterKill(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	env := devEnv(t, dir)

	first := startDev(t, env)
	createTopic(t, first.api(), "survivor")
	orphan := postmasterPid(t, dir)
	require.NoError(t, first.cmd.Process.Kill())
	first.wait(30 * time.Second)
	require.True(t, running(orphan), "the killed hammer's PostgreSQL runs on (nothing could stop it)")

	second := startDev(t, env)
	pid := postmasterPid(t, dir)
	require.NotEqual(t, orphan, pid)
	require.False(t, running(orphan), "the left-over postmaster was stopped")
	if procs := clusterProcesses(dir); procs != nil {
		require.Contains(t, procs, pid)
		for _, p := range procs {
			require.NotEqual(t, orphan, p)
		}
	}
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, second.api()+"/v1/topics/survivor", nil, nil))
	createTopic(t, second.api(), "after-recovery")

	require.NoError(t, second.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, second.wait(90*time.Second))
	requireNothingLeft(t, dir, pid, env["HAMMER_HTTP_ADDR"], env["HAMMER_OPS_ADDR"], env["HAMMER_DEV_NATS_ADDR"])
}

// The README's quickstart against hammer dev: a topic, a subscription to a
// local receiver, a message, then the delivery and its attempts read back.
// A second deliverer process joins the embedded NATS as the README says,
// and so does a second hammer dev given HAMMER_NATS_URL and
// HAMMER_DATABASE_URL.
func TestDevDeliversAndASecondDelivererJoins(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []*http.Request
	var bodies []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, string(b))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()

	dir := dataDir(t)
	env := devEnv(t, dir)
	dev := startDev(t, env)
	api := dev.api()
	createTopic(t, api, "person")
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, api+"/v1/subscriptions", map[string]any{"subscription": map[string]any{
		"id": "receiver-post", "topic_id": "person", "name": "Receiver Post", "url": receiver.URL + "/post",
		"secret_token": "my-super-secret-token", "max_delivery_attempts": 5, "delivery_attempt_delay": 60, "delivery_attempt_timeout": 5,
	}}, nil))
	var msg struct{ ID, Data string }
	require.Equal(t, http.StatusOK, call(t, http.MethodPost, api+"/v1/messages",
		map[string]any{"message": map[string]any{"topic_id": "person", "data": `{"name": "Allisson"}`}}, &msg))
	require.Equal(t, "eyJuYW1lIjogIkFsbGlzc29uIn0=", msg.Data)

	eventually(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, "the receiver got no request")
	mu.Lock()
	require.Equal(t, "/post", got[0].URL.Path)
	require.NotEmpty(t, got[0].Header.Get("webhook-signature"))
	require.Contains(t, bodies[0], `"secret_token":"my-super-secret-token"`)
	mu.Unlock()

	type delivery struct{ ID, Status string }
	var list struct{ Deliveries []delivery }
	eventually(t, 30*time.Second, func() bool {
		list.Deliveries = nil
		call(t, http.MethodGet, api+"/v1/deliveries?message_id="+msg.ID, nil, &list)
		return len(list.Deliveries) == 1 && list.Deliveries[0].Status == "completed"
	}, "the delivery was not recorded as completed: %+v", list.Deliveries)
	var attempts struct {
		DeliveryAttempts []struct {
			Success            bool `json:"success"`
			ResponseStatusCode int  `json:"response_status_code"`
		} `json:"delivery_attempts"`
	}
	eventually(t, 30*time.Second, func() bool {
		call(t, http.MethodGet, api+"/v1/delivery-attempts?delivery_id="+list.Deliveries[0].ID, nil, &attempts)
		return len(attempts.DeliveryAttempts) == 1
	}, "no attempt recorded")
	require.True(t, attempts.DeliveryAttempts[0].Success)
	require.Equal(t, 200, attempts.DeliveryAttempts[0].ResponseStatusCode)

	// README: HAMMER_NATS_URL=nats://127.0.0.1:4222 HAMMER_OPS_ADDR=:9091 hammer deliverer
	second := start(t, map[string]string{
		"HAMMER_NATS_URL": "nats://" + env["HAMMER_DEV_NATS_ADDR"],
		"HAMMER_OPS_ADDR": testkit.FreeAddr(t),
	}, "deliverer")
	second.waitHTTP("http://"+second.env["HAMMER_OPS_ADDR"]+"/readyz", time.Minute)
	require.NoError(t, second.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, second.wait(60*time.Second))

	// Another hammer dev told where NATS and PostgreSQL are starts neither
	// of its own and serves the same data.
	port, err := os.ReadFile(filepath.Join(dir, "postgres", "port"))
	require.NoError(t, err)
	otherDir := dataDir(t)
	otherEnv := devEnv(t, otherDir)
	otherEnv["HAMMER_NATS_URL"] = "nats://" + env["HAMMER_DEV_NATS_ADDR"]
	password, err := os.ReadFile(filepath.Join(dir, "postgres", "password"))
	require.NoError(t, err)
	otherEnv["HAMMER_DATABASE_URL"] = "postgres://hammer:" + strings.TrimSpace(string(password)) + "@127.0.0.1:" + strings.TrimSpace(string(port)) + "/hammer?sslmode=disable"
	other := startDev(t, otherEnv)
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, other.api()+"/v1/topics/person", nil, nil))
	require.Contains(t, other.out.String(), "using the NATS at HAMMER_NATS_URL instead of an embedded one")
	require.Contains(t, other.out.String(), "using the PostgreSQL at HAMMER_DATABASE_URL")
	for _, sub := range []string{"nats", "postgres"} {
		_, err := os.Stat(filepath.Join(otherDir, sub))
		require.ErrorIs(t, err, os.ErrNotExist, "hammer dev made its own %s", sub)
	}
	require.NoError(t, other.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, other.wait(60*time.Second))

	require.NoError(t, dev.cmd.Process.Signal(syscall.SIGTERM))
	require.Equal(t, 0, dev.wait(90*time.Second))
}

// A taken address or missing PostgreSQL binaries stop hammer dev at once
// with one line that says what to do, before any PostgreSQL starts.
func TestDevFailsFastAndClearly(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests
	empty := t.TempDir()

	cases := []struct {
		name string
		env  func(env map[string]string)
		want []string
	}{
		{"http address taken", func(env map[string]string) { env["HAMMER_HTTP_ADDR"] = taken.Addr().String() },
			[]string{"HAMMER_HTTP_ADDR=" + taken.Addr().String() + " is already in use", "set HAMMER_HTTP_ADDR to a free address"}},
		{"ops address taken", func(env map[string]string) { env["HAMMER_OPS_ADDR"] = taken.Addr().String() },
			[]string{"HAMMER_OPS_ADDR=" + taken.Addr().String() + " is already in use"}},
		{"nats address taken", func(env map[string]string) { env["HAMMER_DEV_NATS_ADDR"] = taken.Addr().String() },
			[]string{"HAMMER_DEV_NATS_ADDR=" + taken.Addr().String() + " is already in use"}},
		{"no postgres binaries", func(env map[string]string) {
			env["PATH"] = empty
			env["HAMMER_DEV_PG_BIN_DIRS"] = empty
		}, []string{"no PostgreSQL server binaries", "apt-get install postgresql", "brew install postgresql@16", "HAMMER_DATABASE_URL"}},
		{"bad configuration", func(env map[string]string) { env["HAMMER_DELIVERY_CONCURRENCY"] = "0" },
			[]string{"HAMMER_DELIVERY_CONCURRENCY=0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := dataDir(t)
			env := devEnv(t, dir)
			c.env(env)
			began := time.Now()
			p := start(t, env, "dev")
			require.Equal(t, 1, p.wait(30*time.Second))
			require.Less(t, time.Since(began), 15*time.Second)
			out := strings.TrimRight(p.out.String(), "\n")
			require.NotContains(t, out, "\n", "one line, got:\n%s", out)
			require.True(t, strings.HasPrefix(out, "hammer dev: "), out)
			for _, w := range c.want {
				require.Contains(t, out, w)
			}
			_, err := os.Stat(filepath.Join(dir, "postgres"))
			require.ErrorIs(t, err, os.ErrNotExist, "no PostgreSQL was started")
		})
	}
}

// Two hammer dev on one data directory would share a JetStream store and a
// cluster: the second is refused.
func TestDevRefusesASecondOnTheSameDataDir(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	first := startDev(t, devEnv(t, dir))
	p := start(t, devEnv(t, dir), "dev")
	require.Equal(t, 1, p.wait(30*time.Second))
	require.Contains(t, p.out.String(), "another hammer dev (pid ")
	require.NotContains(t, strings.TrimSpace(p.out.String()), "\n")
	require.False(t, first.exited())
	require.Equal(t, http.StatusOK, call(t, http.MethodGet, first.api()+"/v1/topics", nil, nil))
}

// Ctrl-C in a terminal also ends the reader of a pipe (hammer dev | tee):
// hammer must still stop PostgreSQL rather than die of SIGPIPE on its next
// log line.
func TestDevStopsCleanlyWhenItsLogPipeIsGone(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	env := devEnv(t, dir)
	r, w, err := os.Pipe()
	require.NoError(t, err)
	cmd := exec.Command(hammerBinary(t), "dev")
	cmd.Env = cleanEnv(env)
	cmd.Stderr = w
	require.NoError(t, cmd.Start())
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
		}
	})
	go func() { _, _ = io.Copy(io.Discard, r) }()

	p := &proc{t: t, done: make(chan struct{}), out: &testkit.Output{}, env: env}
	go func() { <-done; close(p.done) }()
	p.cmd = cmd
	p.waitHTTP("http://"+env["HAMMER_OPS_ADDR"]+"/healthz", 2*time.Minute)
	pid := postmasterPid(t, dir)

	require.NoError(t, r.Close()) // the pipe's reader is gone
	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		t.Fatal("hammer did not exit")
	}
	require.True(t, cmd.ProcessState.Success(), "exit: %v", cmd.ProcessState)
	requireNothingLeft(t, dir, pid, env["HAMMER_HTTP_ADDR"], env["HAMMER_OPS_ADDR"], env["HAMMER_DEV_NATS_ADDR"])
}
