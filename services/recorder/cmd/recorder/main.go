// Command recorder runs hammer's recorder on its own: configuration from
// HAMMER_* variables, health and metrics on HAMMER_OPS_ADDR.
package main

import (
	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/standalone"
	"github.com/hammer-webhooks/hammer/services/recorder"
)

func main() {
	var cfg config.Recorder
	standalone.Main(standalone.Spec{
		Name:    "recorder",
		Summary: "writes messages, deliveries and attempts from the streams to PostgreSQL",
		Config:  &cfg,
		Build: func(d standalone.Deps) (standalone.Service, error) {
			return recorder.New(recorder.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
		},
	})
}
