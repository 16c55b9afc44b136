// Package config holds one documented configuration struct per service,
// filled from HAMMER_* environment variables with defaults applied in one
// place, and validated with messages that say which variable to fix.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"go.uber.org/zap/zapcore"

	"github.com/hammer-webhooks/hammer/platform/pgrun"
	"github.com/hammer-webhooks/hammer/platform/topology"
)

// Common is what every service reads.
type Common struct {
	LogLevel       string        `env:"HAMMER_LOG_LEVEL" envDefault:"info" desc:"log level: debug, info, warn or error"`
	NATSURL        string        `env:"HAMMER_NATS_URL" envDefault:"nats://127.0.0.1:4222" desc:"NATS server URL(s), comma-separated; in hammer dev, set it to use that NATS instead of the embedded one"`
	OpsAddr        string        `env:"HAMMER_OPS_ADDR" envDefault:":9090" desc:"address of /healthz, /readyz, /metrics and pprof (one per process)"`
	Pprof          bool          `env:"HAMMER_PPROF" envDefault:"false" desc:"serve /debug/pprof on the ops address"`
	StreamReplicas int           `env:"HAMMER_STREAM_REPLICAS" envDefault:"1" desc:"replicas of every stream and bucket (3 on a NATS cluster)"`
	StreamMaxAge   time.Duration `env:"HAMMER_STREAM_MAX_AGE" envDefault:"168h" desc:"how long streams keep messages and events"`
	StreamMaxBytes int64         `env:"HAMMER_STREAM_MAX_BYTES" envDefault:"-1" desc:"size limit of each stream in bytes; -1 is unlimited"`
	OTLPEndpoint   string        `env:"HAMMER_OTLP_ENDPOINT" desc:"URL of an OpenTelemetry collector's OTLP/HTTP receiver (http://otel-collector:4318); tracing is off when unset"`
	NATSAuth
}

// NATSAuth is how hammer authenticates to NATS and checks its TLS
// certificate, as nats.go supports it. At most one of the credentials
// file, the nkey seed, the user and password, and the token is set.
type NATSAuth struct {
	NATSCreds    string `env:"HAMMER_NATS_CREDS" desc:"a NATS credentials file (user JWT and nkey seed) to connect with"`
	NATSNKeySeed string `env:"HAMMER_NATS_NKEY_SEED" desc:"a file holding an nkey seed (SU...) to connect with"`
	NATSUser     string `env:"HAMMER_NATS_USER" desc:"NATS user name; needs HAMMER_NATS_PASSWORD"`
	NATSPassword string `env:"HAMMER_NATS_PASSWORD" desc:"NATS password of HAMMER_NATS_USER"`
	NATSToken    string `env:"HAMMER_NATS_TOKEN" desc:"NATS authentication token"`
	NATSTLSCA    string `env:"HAMMER_NATS_TLS_CA" desc:"PEM file of the certificate authorities that sign the NATS server's certificate"`
	NATSTLSCert  string `env:"HAMMER_NATS_TLS_CERT" desc:"PEM client certificate for NATS (mutual TLS); needs HAMMER_NATS_TLS_KEY"`
	NATSTLSKey   string `env:"HAMMER_NATS_TLS_KEY" desc:"PEM private key of HAMMER_NATS_TLS_CERT"`
}

// Database is read by the services that use PostgreSQL.
type Database struct {
	DatabaseURL string `env:"HAMMER_DATABASE_URL" desc:"PostgreSQL URL (postgres://user:password@host:5432/db); hammer dev runs its own PostgreSQL when unset"`
}

// API configures services/api.
type API struct {
	Common
	Database
	HTTPAddr        string   `env:"HAMMER_HTTP_ADDR" envDefault:":8000" desc:"address of the REST API (hammer dev: 127.0.0.1:8000)"`
	APITokens       []string `env:"HAMMER_API_TOKENS" envSeparator:"," desc:"comma-separated bearer tokens; when set, /v1 requires one of them; hammer api refuses to start beyond loopback without them, and refuses placeholders (CHANGE-ME)"`
	APIAuth         string   `env:"HAMMER_API_AUTH" desc:"none: serve /v1 without bearer tokens on a non-loopback HAMMER_HTTP_ADDR, on purpose (behind an authenticating proxy)"`
	MaxMessageBytes int      `env:"HAMMER_MAX_MESSAGE_BYTES" envDefault:"524288" desc:"largest message data accepted, in bytes"`
}

// Fanout configures services/fanout.
type Fanout struct {
	Common
	Database
}

// Deliverer configures services/deliverer. It needs no database.
type Deliverer struct {
	Common
	DeliveryConcurrency int           `env:"HAMMER_DELIVERY_CONCURRENCY" envDefault:"64" desc:"concurrent HTTP requests per deliverer process"`
	AllowedCIDRs        []string      `env:"HAMMER_DELIVERY_ALLOWED_CIDRS" envSeparator:"," desc:"when set, the complete list of networks deliveries may reach (replaces the SSRF guard's default)"`
	AckWait             time.Duration `env:"HAMMER_DELIVERY_ACK_WAIT" envDefault:"1m" desc:"how long a delivery stays with a deliverer that stopped reporting progress before another takes it"`
	AlsoAllowedCIDRs    []string      `env:"HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS" envSeparator:"," desc:"networks opened on top of the SSRF guard's default (cloud metadata addresses stay refused); ignored when HAMMER_DELIVERY_ALLOWED_CIDRS is set; hammer dev defaults it to loopback and private ranges"`
	StopGrace           time.Duration `env:"HAMMER_DELIVERY_STOP_GRACE" envDefault:"15s" desc:"how long requests in flight may finish when a deliverer stops (1s to 1h); one still running then is abandoned and made again, same attempt, after HAMMER_DELIVERY_ACK_WAIT"`
}

// Recorder configures services/recorder.
type Recorder struct {
	Common
	Database
	BatchSize     int           `env:"HAMMER_RECORDER_BATCH_SIZE" envDefault:"500" desc:"most events written in one transaction"`
	FlushInterval time.Duration `env:"HAMMER_RECORDER_FLUSH_INTERVAL" envDefault:"50ms" desc:"longest an event waits for its batch to fill"`
}

// Worker configures hammer worker: fanout, deliverer and recorder in one
// process, each with its own part.
type Worker struct {
	Fanout    Fanout
	Deliverer Deliverer
	Recorder  Recorder
}

// Dev configures hammer dev: every service in one process. It is made of
// the services' own structs, so each default is declared once; what dev
// does differently is declared here.
type Dev struct {
	Common
	Database
	API
	Deliverer
	Recorder
	// The API and ops ports stay on loopback unless set: dev's API needs no
	// token and its deliverer may reach private networks.
	HTTPAddr    string `env:"HAMMER_HTTP_ADDR" envDefault:"127.0.0.1:8000"`
	OpsAddr     string `env:"HAMMER_OPS_ADDR" envDefault:"127.0.0.1:9090"`
	DataDir     string `env:"HAMMER_DATA_DIR" envDefault:"./.hammer" desc:"where hammer dev keeps JetStream and its own PostgreSQL"`
	DevNATSAddr string `env:"HAMMER_DEV_NATS_ADDR" envDefault:"127.0.0.1:4222" desc:"where hammer dev's embedded NATS listens, so other processes can join"`
	Postgres    pgrun.Config
}

// Load fills cfg (a pointer to one of the structs above) from the
// environment and validates it.
func Load[T interface{ Validate() error }](cfg *T) error {
	if err := env.Parse(cfg); err != nil {
		return explain(cfg, err)
	}
	return (*cfg).Validate()
}

// LoadFrom is Load with an explicit environment, for tests.
func LoadFrom[T interface{ Validate() error }](cfg *T, environ map[string]string) error {
	if err := env.ParseWithOptions(cfg, env.Options{Environment: environ}); err != nil {
		return explain(cfg, err)
	}
	return (*cfg).Validate()
}

// Validator is every configuration struct (as a pointer, for LoadInto).
type Validator interface{ Validate() error }

// LoadInto is Load for a configuration known only as a Validator; cfg must
// be a pointer to one of the structs above.
func LoadInto(cfg Validator) error {
	if err := env.Parse(cfg); err != nil {
		return explain(cfg, err)
	}
	return cfg.Validate()
}

// explain rewrites the parser's errors, which name Go struct fields, so that
// they name the environment variable and the value's expected form.
func explain(cfg any, err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("reading configuration: %w", err)
	}
	tags := map[string]string{}
	for _, v := range Variables(cfg) {
		tags[v.field] = v.Name
	}
	var errs []error
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			name := tags[pe.Name]
			if name == "" {
				name = pe.Name
			}
			errs = append(errs, fmt.Errorf("%s: want a %s: %w", name, pe.Type, pe.Err))
			continue
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Topology is the stream topology c asks for.
func (c Common) Topology() topology.Config {
	t := topology.DefaultConfig()
	t.Replicas = c.StreamReplicas
	t.MaxAge = c.StreamMaxAge
	t.MaxBytes = c.StreamMaxBytes
	return t
}

// ZapLevel is the parsed HAMMER_LOG_LEVEL.
func (c Common) ZapLevel() zapcore.Level {
	l, _ := zapcore.ParseLevel(c.LogLevel) // checked by Validate
	return l
}

// Validate checks every common variable.
func (c Common) Validate() error {
	var errs []error
	if _, err := zapcore.ParseLevel(c.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("HAMMER_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel))
	}
	for _, u := range strings.Split(c.NATSURL, ",") {
		if err := checkURL(strings.TrimSpace(u), "nats", "tls", "ws", "wss"); err != nil {
			errs = append(errs, fmt.Errorf("HAMMER_NATS_URL: %w", err))
		}
	}
	errs = append(errs, checkAddr("HAMMER_OPS_ADDR", c.OpsAddr), c.NATSAuth.Validate())
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("HAMMER_STREAM_REPLICAS=%d: want 1 to 5 (1 on a single server, 3 on a cluster)", c.StreamReplicas))
	}
	if c.StreamMaxAge < time.Minute {
		errs = append(errs, fmt.Errorf("HAMMER_STREAM_MAX_AGE=%s: want at least 1m (e.g. 168h)", c.StreamMaxAge))
	}
	if c.StreamMaxBytes == 0 || c.StreamMaxBytes < -1 {
		errs = append(errs, fmt.Errorf("HAMMER_STREAM_MAX_BYTES=%d: want -1 (unlimited) or a positive size", c.StreamMaxBytes))
	}
	return errors.Join(errs...)
}

// Validate checks the database URL, which these services cannot run without.
func (d Database) Validate() error {
	if d.DatabaseURL == "" {
		return errors.New("HAMMER_DATABASE_URL is not set: want postgres://user:password@host:5432/db")
	}
	if err := checkURL(d.DatabaseURL, "postgres", "postgresql"); err != nil {
		return fmt.Errorf("HAMMER_DATABASE_URL: %w", err)
	}
	return nil
}

// Validate checks the API's variables.
func (c API) Validate() error {
	return errors.Join(c.Common.Validate(), c.Database.Validate(), c.validateOwn())
}

func (c API) validateOwn() error {
	var errs []error
	errs = append(errs, checkAddr("HAMMER_HTTP_ADDR", c.HTTPAddr))
	for i, t := range c.APITokens {
		if strings.TrimSpace(t) == "" {
			errs = append(errs, fmt.Errorf("HAMMER_API_TOKENS: token %d is empty", i+1))
		}
	}
	if c.APIAuth != "" && c.APIAuth != "none" {
		errs = append(errs, fmt.Errorf("HAMMER_API_AUTH=%q: want none (serve /v1 without tokens, on purpose) or leave it unset", c.APIAuth))
	}
	// NATS refuses payloads above its max_payload (1 MiB by default); keep
	// room for headers.
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > 1<<20-16<<10 {
		errs = append(errs, fmt.Errorf("HAMMER_MAX_MESSAGE_BYTES=%d: want 1 to %d (below NATS's 1 MiB max payload)", c.MaxMessageBytes, 1<<20-16<<10))
	}
	return errors.Join(errs...)
}

// Validate checks fanout's variables.
func (c Fanout) Validate() error {
	return errors.Join(c.Common.Validate(), c.Database.Validate())
}

// Validate checks the deliverer's variables.
func (c Deliverer) Validate() error {
	return errors.Join(c.Common.Validate(), c.validateOwn())
}

func (c Deliverer) validateOwn() error {
	return validateDelivery(c.DeliveryConcurrency, c.AllowedCIDRs, c.AlsoAllowedCIDRs, c.AckWait, c.StopGrace)
}

func validateDelivery(concurrency int, cidrs, also []string, ackWait, stopGrace time.Duration) error {
	var errs []error
	if concurrency < 1 || concurrency > 10_000 {
		errs = append(errs, fmt.Errorf("HAMMER_DELIVERY_CONCURRENCY=%d: want 1 to 10000", concurrency))
	}
	if _, err := ParseCIDRs(cidrs); err != nil {
		errs = append(errs, fmt.Errorf("HAMMER_DELIVERY_ALLOWED_CIDRS: %w", err))
	}
	if _, err := ParseCIDRs(also); err != nil {
		errs = append(errs, fmt.Errorf("HAMMER_DELIVERY_ALSO_ALLOWED_CIDRS: %w", err))
	}
	if ackWait < 5*time.Second {
		errs = append(errs, fmt.Errorf("HAMMER_DELIVERY_ACK_WAIT=%s: want at least 5s", ackWait))
	}
	if stopGrace < time.Second || stopGrace > time.Hour {
		errs = append(errs, fmt.Errorf("HAMMER_DELIVERY_STOP_GRACE=%s: want 1s to 1h", stopGrace))
	}
	return errors.Join(errs...)
}

// Validate checks the recorder's variables.
func (c Recorder) Validate() error {
	return errors.Join(c.Common.Validate(), c.Database.Validate(), c.validateOwn())
}

func (c Recorder) validateOwn() error { return validateRecorder(c.BatchSize, c.FlushInterval) }

func validateRecorder(size int, interval time.Duration) error {
	var errs []error
	if size < 1 || size > 10_000 {
		errs = append(errs, fmt.Errorf("HAMMER_RECORDER_BATCH_SIZE=%d: want 1 to 10000", size))
	}
	if interval <= 0 || interval > 10*time.Second {
		errs = append(errs, fmt.Errorf("HAMMER_RECORDER_FLUSH_INTERVAL=%s: want above 0 and at most 10s", interval))
	}
	return errors.Join(errs...)
}

// Validate checks hammer worker's variables, each once.
func (c Worker) Validate() error {
	return errors.Join(c.Fanout.Validate(), c.Deliverer.validateOwn(), c.Recorder.validateOwn())
}

// Validate checks hammer dev's variables. The database URL may be empty:
// hammer dev then runs its own PostgreSQL.
func (c Dev) Validate() error {
	common := c.Common
	common.OpsAddr = c.OpsAddr
	api := c.API
	api.HTTPAddr = c.HTTPAddr
	errs := []error{common.Validate(), api.validateOwn(), c.Deliverer.validateOwn(), c.Recorder.validateOwn(),
		checkAddr("HAMMER_DEV_NATS_ADDR", c.DevNATSAddr)}
	if c.DatabaseURL != "" {
		errs = append(errs, c.Database.Validate())
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("HAMMER_DATA_DIR is empty: want a directory such as ./.hammer"))
	}
	return errors.Join(errs...)
}

// ParseCIDRs parses a list of networks; a bare address is a single host.
func ParseCIDRs(list []string) ([]*net.IPNet, error) {
	var nets []*net.IPNet
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", s)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			nets = append(nets, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR (e.g. 10.0.0.0/8)", s)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

func checkURL(raw string, schemes ...string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL with a host", redact(raw))
	}
	for _, s := range schemes {
		if u.Scheme == s {
			return nil
		}
	}
	return fmt.Errorf("%q: scheme %q, want %s", redact(raw), u.Scheme, strings.Join(schemes, ", "))
}

func checkAddr(name, addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%s=%q: want host:port or :port", name, addr)
	}
	return nil
}

// redact hides a URL's password so an error message never carries it.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func redactList(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		if strings.Contains(p, "@") {
			parts[i] = redact(strings.TrimSpace(p))
		}
	}
	return strings.Join(parts, ",")
}

// Variable describes one environment variable for --help and the docs.
type Variable struct {
	Name, Default, Description string
	field                      string
}

// Variables lists the variables cfg reads (a struct or pointer to one), in
// declaration order.
func Variables(cfg any) []Variable {
	var out []Variable
	seen := map[string]bool{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := f.Tag.Get("env")
			if f.Anonymous || (name == "" && f.Type.Kind() == reflect.Struct) {
				walk(f.Type)
				continue
			}
			if name == "" || seen[name] {
				continue
			}
			seen[name] = true
			out = append(out, Variable{Name: name, Default: f.Tag.Get("envDefault"), Description: f.Tag.Get("desc"), field: f.Name})
		}
	}
	t := reflect.TypeOf(cfg)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	walk(t)
	return out
}

// CheckAuth is what the API checks before it serves: /v1 open beyond
// loopback only when HAMMER_API_AUTH=none says so, and never with the
// placeholder tokens of an example configuration. It is separate from
// Validate because it is about where the API is served, which only the
// process serving it knows.
func (c API) CheckAuth() error {
	for i, t := range c.APITokens {
		l := strings.ToLower(t)
		if strings.Contains(l, "change-me") || strings.Contains(l, "changeme") {
			return fmt.Errorf("HAMMER_API_TOKENS: token %d is a placeholder (it contains CHANGE-ME): set real tokens, e.g. from openssl rand -hex 32", i+1)
		}
	}
	if len(c.APITokens) > 0 && c.APIAuth == "none" {
		return errors.New("HAMMER_API_AUTH=none but HAMMER_API_TOKENS is set: unset one of them")
	}
	if len(c.APITokens) == 0 && c.APIAuth != "none" && !Loopback(c.HTTPAddr) {
		return fmt.Errorf("HAMMER_HTTP_ADDR=%s reaches beyond loopback and HAMMER_API_TOKENS is unset: set HAMMER_API_TOKENS, or HAMMER_API_AUTH=none to serve /v1 without authentication on purpose", c.HTTPAddr)
	}
	return nil
}

// Loopback reports whether addr (host:port) listens on loopback only.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
