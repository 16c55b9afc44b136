// Command recorder runs hammer's recorder on its own: configuration from
// HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR.
package main

import (
	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/process"
	"github.com/hammer-webhooks/hammer/services/recorder"
)

func main() {
	var cfg config.Recorder
	process.Main("recorder", "writes messages, deliveries and attempts from the streams to PostgreSQL", &cfg, func() (process.Plan, error) {
		return process.Plan{Name: "recorder", Common: cfg.Common, Ops: true, Units: []process.Unit{{
			Name: "recorder", Common: cfg.Common, DatabaseURL: cfg.DatabaseURL,
			Build: func(d process.Deps) (process.Service, error) {
				return recorder.New(recorder.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
			},
		}}}, nil
	})
}
