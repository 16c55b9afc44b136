// Command api runs hammer's REST API on its own: configuration from HAMMER_*
// variables, the API on HAMMER_HTTP_ADDR (with its own /healthz, /readyz and
// /metrics) and the same, with pprof when enabled, on HAMMER_OPS_ADDR.
package main

import (
	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/process"
	"github.com/hammer-webhooks/hammer/services/api"
)

func main() {
	var cfg config.API
	process.Main("api", "hammer's REST API", &cfg, func() (process.Plan, error) {
		return process.Plan{Name: "api", Common: cfg.Common, Ops: true, Units: []process.Unit{{
			Name: "api", Common: cfg.Common, DatabaseURL: cfg.DatabaseURL,
			Build: func(d process.Deps) (process.Service, error) {
				return api.New(api.Options{Config: cfg, Pool: d.Pool, NATS: d.NATS, Logger: d.Logger, Registry: d.Registry})
			},
		}}}, cfg.CheckAuth()
	})
}
