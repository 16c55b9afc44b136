// Command deliverer runs hammer's deliverer service on its own: configuration
// from HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR. Run as many
// as the receivers need; they share one durable consumer.
package main

import (
	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/process"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

func main() {
	var cfg config.Deliverer
	process.Main("deliverer", "makes delivery attempts and records them as events", &cfg, func() (process.Plan, error) {
		return process.Plan{Name: "deliverer", Common: cfg.Common, Ops: true, Units: []process.Unit{{
			Name: "deliverer", Common: cfg.Common,
			Build: func(d process.Deps) (process.Service, error) {
				return deliverer.New(deliverer.Options{Config: cfg, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
			},
		}}}, nil
	})
}
