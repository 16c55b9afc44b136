package config_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/config"
)

func TestDefaults(t *testing.T) {
	t.Parallel()
	var c config.API
	require.NoError(t, config.LoadFrom(&c, map[string]string{"HAMMER_DATABASE_URL": "postgres://u:p@localhost:5432/hammer"}))
	require.Equal(t, ":8000", c.HTTPAddr)
	require.Equal(t, 512<<10, c.MaxMessageBytes)
	require.Equal(t, 7*24*time.Hour, c.StreamMaxAge)
	require.Equal(t, 1, c.StreamReplicas)
	require.Empty(t, c.APITokens)

	var d config.Dev
	require.NoError(t, config.LoadFrom(&d, map[string]string{}), "hammer dev runs without a database URL")
	require.Equal(t, "./.hammer", d.DataDir)
	require.Equal(t, "127.0.0.1:4222", d.DevNATSAddr)
	require.Equal(t, 64, d.DeliveryConcurrency)
	require.Equal(t, 15*time.Second, d.StopGrace)
}

func TestErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "HAMMER_DATABASE_URL is not set"},
		{map[string]string{"HAMMER_DATABASE_URL": "mysql://x/y"}, "HAMMER_DATABASE_URL"},
		{map[string]string{"HAMMER_LOG_LEVEL": "loud"}, "HAMMER_LOG_LEVEL"},
		{map[string]string{"HAMMER_NATS_URL": "http://x:4222"}, "HAMMER_NATS_URL"},
		{map[string]string{"HAMMER_STREAM_REPLICAS": "0"}, "HAMMER_STREAM_REPLICAS"},
		{map[string]string{"HAMMER_STREAM_REPLICAS": "three"}, "HAMMER_STREAM_REPLICAS"},
		{map[string]string{"HAMMER_STREAM_MAX_AGE": "1s"}, "HAMMER_STREAM_MAX_AGE"},
		{map[string]string{"HAMMER_HTTP_ADDR": "8000"}, "HAMMER_HTTP_ADDR"},
		{map[string]string{"HAMMER_MAX_MESSAGE_BYTES": "2000000"}, "HAMMER_MAX_MESSAGE_BYTES"},
		{map[string]string{"HAMMER_API_TOKENS": "a,,b"}, "HAMMER_API_TOKENS"},
	}
	for _, tc := range cases {
		env := map[string]string{"HAMMER_DATABASE_URL": "postgres://localhost/hammer"}
		for k, v := range tc.env {
			env[k] = v
		}
		if _, ok := tc.env["HAMMER_DATABASE_URL"]; !ok && len(tc.env) == 0 {
			delete(env, "HAMMER_DATABASE_URL")
		}
		var c config.API
		err := config.LoadFrom(&c, env)
		require.ErrorContains(t, err, tc.want, "env %v", tc.env)
	}
}

func TestDelivererAndRecorderErrors(t *testing.T) {
	t.Parallel()
	var d config.Deliverer
	err := config.LoadFrom(&d, map[string]string{"HAMMER_DELIVERY_CONCURRENCY": "0", "HAMMER_DELIVERY_ALLOWED_CIDRS": "10.0.0.0/8,banana"})
	require.ErrorContains(t, err, "HAMMER_DELIVERY_CONCURRENCY")
	require.ErrorContains(t, err, `"banana"`)
	for _, grace := range []string{"0s", "500ms", "2h0m0s"} {
		var d config.Deliverer
		require.ErrorContains(t, config.LoadFrom(&d, map[string]string{"HAMMER_DELIVERY_STOP_GRACE": grace}),
			"HAMMER_DELIVERY_STOP_GRACE="+grace+": want 1s to 1h")
	}
	var longer config.Deliverer
	require.NoError(t, config.LoadFrom(&longer, map[string]string{"HAMMER_DELIVERY_STOP_GRACE": "5m"}))
	require.Equal(t, 5*time.Minute, longer.StopGrace)

	var r config.Recorder
	err = config.LoadFrom(&r, map[string]string{"HAMMER_DATABASE_URL": "postgres://localhost/h", "HAMMER_RECORDER_BATCH_SIZE": "0"})
	require.ErrorContains(t, err, "HAMMER_RECORDER_BATCH_SIZE")
}

func TestErrorsNeverShowPasswords(t *testing.T) {
	t.Parallel()
	var c config.API
	err := config.LoadFrom(&c, map[string]string{"HAMMER_DATABASE_URL": "mysql://user:hunter2@db/x"})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
	nets, err := config.ParseCIDRs([]string{"127.0.0.0/8", " ::1 ", "10.1.2.3", ""})
	require.NoError(t, err)
	require.Len(t, nets, 3)
	require.Equal(t, "10.1.2.3/32", nets[2].String())
	require.Equal(t, "::1/128", nets[1].String())
}

func TestVariablesListEverySetting(t *testing.T) {
	t.Parallel()
	names := map[string]bool{}
	for _, v := range config.Variables(config.Dev{}) {
		require.NotEmpty(t, v.Description, v.Name)
		names[v.Name] = true
	}
	for _, want := range []string{
		"HAMMER_DATABASE_URL", "HAMMER_NATS_URL", "HAMMER_HTTP_ADDR", "HAMMER_OPS_ADDR", "HAMMER_DATA_DIR",
		"HAMMER_DEV_NATS_ADDR", "HAMMER_LOG_LEVEL", "HAMMER_API_TOKENS", "HAMMER_DELIVERY_ALLOWED_CIDRS",
		"HAMMER_DELIVERY_CONCURRENCY", "HAMMER_MAX_MESSAGE_BYTES", "HAMMER_STREAM_REPLICAS",
		"HAMMER_STREAM_MAX_AGE", "HAMMER_OTLP_ENDPOINT", "HAMMER_DELIVERY_STOP_GRACE",
	} {
		require.True(t, names[want], "%s missing from Variables(Dev)", want)
	}
}
