// Command fanout runs hammer's fanout service on its own: configuration from
// HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR.
package main

import (
	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/standalone"
	"github.com/hammer-webhooks/hammer/services/fanout"
)

func main() {
	var cfg config.Fanout
	standalone.Main(standalone.Spec{
		Name:    "fanout",
		Summary: "turns accepted messages into delivery events",
		Config:  &cfg,
		Build: func(d standalone.Deps) (standalone.Service, error) {
			return fanout.New(fanout.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
		},
	})
}
