package process

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

// plan is a process of one service with its ops address.
func plan(name string, common config.Common, dbURL string, build func(Deps) (Service, error)) Plan {
	return Plan{Name: name, Common: common, Ops: true, Units: []Unit{{Name: name, Common: common, DatabaseURL: dbURL, Build: build}}}
}

// These tests set environment variables, so they do not run in parallel.

func TestConnectsWhatTheConfigurationNames(t *testing.T) {
	n := testkit.NewNATS(t)
	db := testkit.NewDB(t)
	t.Setenv("HAMMER_NATS_URL", n.URL)
	t.Setenv("HAMMER_OPS_ADDR", testkit.FreeAddr(t))
	t.Setenv("HAMMER_DATABASE_URL", db.URL)

	var fanoutCfg config.Fanout
	var got Deps
	err := run(&fanoutCfg, func() (Plan, error) {
		return plan("fanout", fanoutCfg.Common, fanoutCfg.DatabaseURL, func(d Deps) (Service, error) {
			got = d
			require.Equal(t, db.URL, fanoutCfg.DatabaseURL, "the configuration is loaded before Build")
			require.NoError(t, d.Pool.Ping(context.Background()))
			require.True(t, d.NATS.IsConnected())
			return once{}, nil
		}), nil
	})
	require.NoError(t, err)
	require.NotNil(t, got.Pool)
	require.NotNil(t, got.Registry)

	var delivererCfg config.Deliverer
	err = run(&delivererCfg, func() (Plan, error) {
		return plan("deliverer", delivererCfg.Common, "", func(d Deps) (Service, error) {
			require.Nil(t, d.Pool, "the deliverer has no database")
			return once{}, nil
		}), nil
	})
	require.NoError(t, err)
}

func TestFailuresAreReported(t *testing.T) {
	n := testkit.NewNATS(t)
	t.Setenv("HAMMER_NATS_URL", n.URL)
	t.Setenv("HAMMER_OPS_ADDR", testkit.FreeAddr(t))
	t.Setenv("HAMMER_DATABASE_URL", "")

	var cfg config.Recorder
	err := run(&cfg, func() (Plan, error) {
		return plan("recorder", cfg.Common, cfg.DatabaseURL, func(Deps) (Service, error) {
			t.Fatal("Build ran with a configuration that does not validate")
			return nil, nil
		}), nil
	})
	require.ErrorContains(t, err, "HAMMER_DATABASE_URL is not set")

	var dcfg config.Deliverer
	boom := errors.New("boom")
	err = run(&dcfg, func() (Plan, error) {
		return plan("deliverer", dcfg.Common, "", func(Deps) (Service, error) { return once{err: boom}, nil }), nil
	})
	require.ErrorIs(t, err, boom)
}
