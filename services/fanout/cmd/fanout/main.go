// Command fanout runs hammer's fanout service on its own: configuration from
// HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR.
package main

import (
	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/process"
	"github.com/hammer-webhooks/hammer/services/fanout"
)

func main() {
	var cfg config.Fanout
	process.Main("fanout", "turns accepted messages into delivery events", &cfg, func() (process.Plan, error) {
		return process.Plan{Name: "fanout", Common: cfg.Common, Ops: true, Units: []process.Unit{{
			Name: "fanout", Common: cfg.Common, DatabaseURL: cfg.DatabaseURL,
			Build: func(d process.Deps) (process.Service, error) {
				return fanout.New(fanout.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
			},
		}}}, nil
	})
}
