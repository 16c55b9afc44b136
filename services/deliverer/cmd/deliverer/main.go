// Command deliverer runs hammer's deliverer service on its own: configuration
// from HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR. Run as many
// as the receivers need; they share one durable consumer.
package main

import (
	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/standalone"
	"github.com/hammer-webhooks/hammer/services/deliverer"
)

func main() {
	var cfg config.Deliverer
	standalone.Main(standalone.Spec{
		Name:    "deliverer",
		Summary: "makes delivery attempts and records them as events",
		Config:  &cfg,
		Build: func(d standalone.Deps) (standalone.Service, error) {
			return deliverer.New(deliverer.Options{Config: cfg, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
		},
	})
}
