package standalone

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/ops"
	"github.com/hammer-webhooks/hammer/platform/testkit"
)

// once is a service that checks what it was given and returns at once.
type once struct{ err error }

func (o once) Run(context.Context) error    { return o.err }
func (o once) Checks() map[string]ops.Check { return nil }

// These tests set environment variables, so they do not run in parallel.

func TestConnectsWhatTheConfigurationNames(t *testing.T) {
	n := testkit.NewNATS(t)
	db := testkit.NewDB(t)
	t.Setenv("HAMMER_NATS_URL", n.URL)
	t.Setenv("HAMMER_OPS_ADDR", testkit.FreeAddr(t))
	t.Setenv("HAMMER_DATABASE_URL", db.URL)

	var fanoutCfg config.Fanout
	var got Deps
	err := run(Spec{Name: "fanout", Config: &fanoutCfg, Build: func(d Deps) (Service, error) {
		got = d
		require.Equal(t, db.URL, fanoutCfg.DatabaseURL, "the configuration is loaded before Build")
		require.NoError(t, d.Pool.Ping(context.Background()))
		require.True(t, d.NATS.IsConnected())
		return once{}, nil
	}})
	require.NoError(t, err)
	require.NotNil(t, got.Pool)
	require.NotNil(t, got.Registry)

	var delivererCfg config.Deliverer
	err = run(Spec{Name: "deliverer", Config: &delivererCfg, Build: func(d Deps) (Service, error) {
		require.Nil(t, d.Pool, "the deliverer has no database")
		return once{}, nil
	}})
	require.NoError(t, err)
}

func TestFailuresAreReported(t *testing.T) {
	n := testkit.NewNATS(t)
	t.Setenv("HAMMER_NATS_URL", n.URL)
	t.Setenv("HAMMER_OPS_ADDR", testkit.FreeAddr(t))
	t.Setenv("HAMMER_DATABASE_URL", "")

	var cfg config.Recorder
	err := run(Spec{Name: "recorder", Config: &cfg, Build: func(Deps) (Service, error) {
		t.Fatal("Build ran with a configuration that does not validate")
		return nil, nil
	}})
	require.ErrorContains(t, err, "HAMMER_DATABASE_URL is not set")

	var dcfg config.Deliverer
	boom := errors.New("boom")
	err = run(Spec{Name: "deliverer", Config: &dcfg, Build: func(Deps) (Service, error) { return once{err: boom}, nil }})
	require.ErrorIs(t, err, boom)
}
