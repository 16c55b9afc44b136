package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/testkit"
)

// oneLineExit waits for p to fail and returns its only line of output.
func oneLineExit(t *testing.T, p *proc) string {
	t.Helper()
	require.Equal(t, 1, p.wait(30*time.Second))
	out := strings.TrimRight(p.out.String(), "\n")
	require.NotContains(t, out, "\n", "one line: %s", out)
	return out
}

// hammer api beyond loopback without tokens, or with the placeholders of
// an example configuration, does not start.
func TestAPIRefusesToStartOpen(t *testing.T) {
	t.Parallel()
	db := "postgres://hammer:x@127.0.0.1:1/hammer"
	open := start(t, map[string]string{"HAMMER_HTTP_ADDR": fmt.Sprintf(":%d", testkit.FreePort(t)), "HAMMER_DATABASE_URL": db}, "api")
	out := oneLineExit(t, open)
	require.Contains(t, out, "HAMMER_API_TOKENS is unset")
	require.Contains(t, out, "HAMMER_API_AUTH=none")

	placeholder := start(t, map[string]string{"HAMMER_HTTP_ADDR": testkit.FreeAddr(t), "HAMMER_DATABASE_URL": db,
		"HAMMER_API_TOKENS": "CHANGE-ME"}, "api")
	require.Contains(t, oneLineExit(t, placeholder), "placeholder")
}

// authNATS is an embedded NATS that wants a user and password, or a token.
func authNATS(t *testing.T, opts server.Options) string {
	t.Helper()
	opts.Host, opts.Port, opts.JetStream, opts.StoreDir, opts.NoLog, opts.NoSigs = "127.0.0.1", server.RANDOM_PORT, true, t.TempDir(), true, true
	srv, err := server.NewServer(&opts)
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second))
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return fmt.Sprintf("nats://%s", srv.Addr().String())
}

// hammer connects to a NATS that wants authentication with the settings,
// fails at once and clearly without them, and never shows a password.
func TestNATSAuthentication(t *testing.T) {
	t.Parallel()
	const password = "hunter2-nats-password"
	url := authNATS(t, server.Options{Username: "hammer", Password: password})
	host := strings.TrimPrefix(url, "nats://")

	for name, env := range map[string]map[string]string{
		"no credentials":            {"HAMMER_NATS_URL": url},
		"wrong password in the URL": {"HAMMER_NATS_URL": "nats://hammer:" + password + "-wrong@" + host},
		"wrong password":            {"HAMMER_NATS_URL": url, "HAMMER_NATS_USER": "hammer", "HAMMER_NATS_PASSWORD": password + "-wrong"},
	} {
		env["HAMMER_OPS_ADDR"] = testkit.FreeAddr(t)
		out := oneLineExit(t, start(t, env, "deliverer"))
		require.Contains(t, strings.ToLower(out), "authorization violation", name)
		require.Contains(t, out, "HAMMER_NATS_USER", name)
		require.NotContains(t, out, password, name)
	}

	for name, env := range map[string]map[string]string{
		"user and password":   {"HAMMER_NATS_URL": url, "HAMMER_NATS_USER": "hammer", "HAMMER_NATS_PASSWORD": password},
		"password in the URL": {"HAMMER_NATS_URL": "nats://hammer:" + password + "@" + host},
	} {
		env["HAMMER_OPS_ADDR"] = testkit.FreeAddr(t)
		p := start(t, env, "deliverer")
		p.waitHTTP("http://"+env["HAMMER_OPS_ADDR"]+"/readyz", time.Minute)
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
		require.Equal(t, 0, p.wait(60*time.Second), name)
		require.NotContains(t, p.out.String(), password, name)
	}

	const token = "s3cret-nats-token"
	tokenURL := authNATS(t, server.Options{Authorization: token})
	env := map[string]string{"HAMMER_NATS_URL": tokenURL, "HAMMER_NATS_TOKEN": token, "HAMMER_OPS_ADDR": testkit.FreeAddr(t)}
	p := start(t, env, "deliverer")
	p.waitHTTP("http://"+env["HAMMER_OPS_ADDR"]+"/readyz", time.Minute)
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, p.wait(60*time.Second))
	require.NotContains(t, p.out.String(), token)
	denied := oneLineExit(t, start(t, map[string]string{"HAMMER_NATS_URL": tokenURL, "HAMMER_OPS_ADDR": testkit.FreeAddr(t)}, "deliverer"))
	require.Contains(t, strings.ToLower(denied), "authorization violation")
}

// listeners returns the local addresses of the TCP sockets listening on
// port, from /proc/net/tcp and tcp6.
func listeners(t *testing.T, port int) []string {
	t.Helper()
	var out []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			hexAddr, hexPort, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			if p, err := strconv.ParseUint(hexPort, 16, 16); err != nil || int(p) != port {
				continue
			}
			out = append(out, hexAddr)
		}
		fh.Close()
	}
	return out
}

// free reports whether nothing listens on port on any address.
func free(port int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// hammer dev, not told otherwise, serves its API and ops ports on
// 127.0.0.1 only (its API needs no token there).
func TestDevListensOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	if !free(8000) || !free(9090) {
		t.Skip("ports 8000 and 9090 are taken on this machine: hammer dev's defaults cannot be tried")
	}
	dir := dataDir(t)
	env := map[string]string{"HAMMER_DATA_DIR": dir, "HAMMER_DEV_NATS_ADDR": testkit.FreeAddr(t)}
	p := start(t, env, "dev")
	p.waitHTTP("http://127.0.0.1:9090/healthz", 2*time.Minute)
	p.waitHTTP("http://127.0.0.1:8000/healthz", time.Minute)
	for _, port := range []int{8000, 9090} {
		addrs := listeners(t, port)
		require.NotEmpty(t, addrs, "nothing listens on %d", port)
		for _, a := range addrs {
			require.Equal(t, "0100007F", a, "port %d listens beyond 127.0.0.1", port)
		}
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGINT))
	require.Equal(t, 0, p.wait(90*time.Second))
}
