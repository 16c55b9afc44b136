package config_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/config"
)

func TestDevStaysOnLoopbackUnlessTold(t *testing.T) {
	t.Parallel()
	var d config.Dev
	require.NoError(t, config.LoadFrom(&d, map[string]string{}))
	require.Equal(t, "127.0.0.1:8000", d.HTTPAddr)
	require.Equal(t, "127.0.0.1:9090", d.OpsAddr)

	var open config.Dev
	require.NoError(t, config.LoadFrom(&open, map[string]string{"HAMMER_HTTP_ADDR": ":8001", "HAMMER_OPS_ADDR": ":9091", "HAMMER_API_AUTH": "none"}))
	require.Equal(t, ":8001", open.HTTPAddr)
	require.Equal(t, ":9091", open.OpsAddr)
}

func TestAPIRefusesToServeOpenBeyondLoopback(t *testing.T) {
	t.Parallel()
	db := "postgres://u:p@localhost:5432/hammer"
	load := func(env map[string]string) config.API {
		t.Helper()
		env["HAMMER_DATABASE_URL"] = db
		var c config.API
		require.NoError(t, config.LoadFrom(&c, env))
		return c
	}
	for _, addr := range []string{":8000", "0.0.0.0:8000", "[::]:8000", "10.1.2.3:8000", "api.example.com:8000"} {
		err := load(map[string]string{"HAMMER_HTTP_ADDR": addr}).CheckAuth()
		require.ErrorContains(t, err, "HAMMER_API_TOKENS is unset", addr)
		require.ErrorContains(t, err, "HAMMER_API_AUTH=none", addr)
	}
	for _, addr := range []string{"127.0.0.1:8000", "[::1]:8000", "localhost:8000"} {
		require.NoError(t, load(map[string]string{"HAMMER_HTTP_ADDR": addr}).CheckAuth(), addr)
	}
	require.NoError(t, load(map[string]string{"HAMMER_API_AUTH": "none"}).CheckAuth())
	require.NoError(t, load(map[string]string{"HAMMER_API_TOKENS": "s3cr3t-token"}).CheckAuth())
	for _, placeholder := range []string{"CHANGE-ME", "a,change-me-too", "ChangeMe", "xchangemex"} {
		for _, addr := range []string{":8000", "127.0.0.1:8000"} {
			require.ErrorContains(t, load(map[string]string{"HAMMER_HTTP_ADDR": addr, "HAMMER_API_TOKENS": placeholder}).CheckAuth(),
				"placeholder", placeholder)
		}
	}
	require.ErrorContains(t, load(map[string]string{"HAMMER_API_AUTH": "none", "HAMMER_API_TOKENS": "t"}).CheckAuth(), "unset one")

	var c config.API
	require.ErrorContains(t, config.LoadFrom(&c, map[string]string{"HAMMER_DATABASE_URL": db, "HAMMER_API_AUTH": "off"}), `HAMMER_API_AUTH="off"`)
}

func TestNATSSettings(t *testing.T) {
	t.Parallel()
	base := map[string]string{"HAMMER_DATABASE_URL": "postgres://localhost/hammer"}
	with := func(kv ...string) map[string]string {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			env[kv[i]] = kv[i+1]
		}
		return env
	}
	load := func(env map[string]string) (config.Fanout, error) {
		var c config.Fanout
		return c, config.LoadFrom(&c, env)
	}
	c, err := load(with("HAMMER_NATS_USER", "hammer", "HAMMER_NATS_PASSWORD", "pw"))
	require.NoError(t, err)
	opts, err := c.NATSOptions()
	require.NoError(t, err)
	require.Len(t, opts, 1)

	require.ErrorContains(t, second(load(with("HAMMER_NATS_USER", "hammer"))), "HAMMER_NATS_USER and HAMMER_NATS_PASSWORD go together")
	require.ErrorContains(t, second(load(with("HAMMER_NATS_USER", "u", "HAMMER_NATS_PASSWORD", "p", "HAMMER_NATS_TOKEN", "t"))), "set only one way")
	require.ErrorContains(t, second(load(with("HAMMER_NATS_TLS_CERT", "/x.pem"))), "HAMMER_NATS_TLS_CERT and HAMMER_NATS_TLS_KEY go together")
	require.ErrorContains(t, second(load(with("HAMMER_NATS_CREDS", "/nonexistent/hammer.creds"))), "HAMMER_NATS_CREDS=/nonexistent/hammer.creds: cannot read it")

	ca := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(ca, []byte("not a certificate"), 0o600))
	c, err = load(with("HAMMER_NATS_TOKEN", "t", "HAMMER_NATS_TLS_CA", ca))
	require.NoError(t, err)
	opts, err = c.NATSOptions()
	require.NoError(t, err)
	require.Len(t, opts, 2)
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := config.Redact("nats://hammer:hunter2@n1:4222, nats://n2:4222")
	require.NotContains(t, got, "hunter2")
	require.Contains(t, got, "hammer:xxxxx@n1:4222")
	require.Contains(t, got, "n2:4222")
}

func second[T any](_ T, err error) error { return err }
