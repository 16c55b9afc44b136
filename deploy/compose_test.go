package deploy

import (
	"context"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

const composePath = "docker-compose.yml"

// maxDeliveryAttemptTimeout is the longest delivery_attempt_timeout the API
// accepts; TestComposeServicesRun holds it against the API.
const maxDeliveryAttemptTimeout = 300 * time.Second

// composeSecrets are the variables docker-compose.yml refuses to start
// without (${VAR:?message}), as an operator's .env would set them. The NATS
// passwords are the ones connectAs uses.
var composeSecrets = map[string]string{
	"HAMMER_API_TOKENS":                  composeToken,
	"HAMMER_NATS_API_PASSWORD":           "pw-api",
	"HAMMER_NATS_FANOUT_PASSWORD":        "pw-fanout",
	"HAMMER_NATS_DELIVERER_PASSWORD":     "pw-deliverer",
	"HAMMER_NATS_RECORDER_PASSWORD":      "pw-recorder",
	"HAMMER_NATS_EVENTS_READER_PASSWORD": "pw-events-reader",
}

// composeToken is the API token the tests give docker-compose.yml.
const composeToken = "deploy-test-token"

// loadCompose loads docker-compose.yml as docker compose does (schema
// validation, merge keys, interpolation). Interpolation sees only
// composeSecrets, so every ${VAR:-default} takes its default.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadComposeWith(composeSecrets)
	if err != nil {
		t.Fatalf("%s: %v", composePath, err)
	}
	return p
}

func loadComposeWith(env map[string]string) (*types.Project, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  abs,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(abs, composePath)}},
		Environment: types.Mapping(maps.Clone(env)), // the loader adds to it
	}, func(o *loader.Options) { o.SetProjectName("hammer", true) })
}

// TestComposeRefusesMissingSecrets: without each secret, docker compose
// stops before starting anything and names the variable.
func TestComposeRefusesMissingSecrets(t *testing.T) {
	t.Parallel()
	for name := range composeSecrets {
		env := maps.Clone(composeSecrets)
		delete(env, name)
		_, err := loadComposeWith(env)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s without %s: %v, want a refusal naming it", composePath, name, err)
		}
	}
}

// isHammer says whether a compose service runs the image of deploy/Dockerfile.
func isHammer(s types.ServiceConfig) bool {
	return s.Build != nil && filepath.ToSlash(s.Build.Dockerfile) == dockerfilePath
}

// composeContainer reduces a compose service to what the code decides.
func composeContainer(t *testing.T, df *dockerfile, name string, s types.ServiceConfig) container {
	t.Helper()
	where := composePath + ": service " + name
	ct := container{where: where, args: s.Command, env: map[string]string{}}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("%s: %s has no value: it would come from the host's environment", where, k)
			continue
		}
		ct.env[k] = *v
	}
	if s.Entrypoint != nil {
		t.Errorf("%s: entrypoint %q: leave the image's (the hammer binary)", where, s.Entrypoint)
	}
	if hc := s.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 0 {
		test := hc.Test
		if test[0] != "CMD" || len(test) != 3 {
			t.Errorf("%s: healthcheck %q: want [\"CMD\", \"<probe binary>\", \"<url>\"]: the image has no shell", where, test)
			return ct
		}
		if _, ok := df.copied[test[1]]; !ok {
			t.Errorf("%s: healthcheck runs %s, which %s does not put in the image", where, test[1], dockerfilePath)
		}
		u, err := url.Parse(test[2])
		if err != nil {
			t.Errorf("%s: healthcheck URL %q: %v", where, test[2], err)
			return ct
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "localhost" && h != "::1" {
			t.Errorf("%s: healthcheck URL %s: want the container itself (127.0.0.1)", where, test[2])
		}
		port, _ := strconv.Atoi(u.Port())
		ct.probes = append(ct.probes, probe{kind: "healthcheck", path: u.Path, port: port})
	}
	return ct
}

func TestCompose(t *testing.T) {
	t.Parallel()
	c := hammer(t)
	df, err := parseDockerfile()
	if err != nil {
		t.Fatal(err)
	}
	p := loadCompose(t)

	migrations := ""
	var hammers []string
	for name, s := range p.Services {
		if isHammer(s) {
			hammers = append(hammers, name)
			if slices.Equal(s.Command, []string{"migrate", "up"}) {
				migrations = name
			}
		}
	}
	sort.Strings(hammers)
	if migrations == "" {
		t.Errorf("%s: no service runs hammer migrate up", composePath)
	}

	commands := map[string]string{}
	for _, name := range hammers {
		s := p.Services[name]
		ct := composeContainer(t, df, name, s)
		c.check(t, ct)
		if len(s.Command) == 0 {
			continue
		}
		cmd := s.Command[0]
		commands[cmd] = name
		where := ct.where

		if cmd != "migrate" && s.HealthCheck == nil {
			t.Errorf("%s: no healthcheck on /readyz", where)
		}
		// The services that use PostgreSQL start after the schema is there.
		if _, ok := ct.env["HAMMER_DATABASE_URL"]; ok && name != migrations && migrations != "" {
			if d, ok := s.DependsOn[migrations]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s: depends_on %s: want condition %s (it uses PostgreSQL)", where, migrations, types.ServiceConditionCompletedSuccessfully)
			}
		}
		checkComposeURL(t, p, where, ct.env, "HAMMER_DATABASE_URL")
		checkComposeURL(t, p, where, ct.env, "HAMMER_NATS_URL")
		// A published port of the API reaches the address it serves.
		if cmd == "api" {
			port, err := c.port("HAMMER_HTTP_ADDR", ct.env)
			if err != nil {
				t.Error(err)
			}
			published := false
			for _, pc := range s.Ports {
				published = published || pc.Target == uint32(port)
				if pc.HostIP != "127.0.0.1" {
					t.Errorf("%s: port %d published on %q: want 127.0.0.1 only (plain HTTP)", where, pc.Target, pc.HostIP)
				}
			}
			if !published {
				t.Errorf("%s: ports %v: want the API's port %d published", where, s.Ports, port)
			}
			if tokens := ct.env["HAMMER_API_TOKENS"]; tokens != composeToken {
				t.Errorf("%s: HAMMER_API_TOKENS is %q: want it required from the environment", where, tokens)
			}
		}
		if cmd == "deliverer" {
			if s.Deploy == nil || s.Deploy.Replicas == nil || *s.Deploy.Replicas < 2 {
				t.Errorf("%s: deploy.replicas: want 2 or more (deliverers share one consumer)", where)
			}
			if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= maxDeliveryAttemptTimeout {
				t.Errorf("%s: stop_grace_period %v: want above the longest delivery_attempt_timeout, %s", where, s.StopGracePeriod, maxDeliveryAttemptTimeout)
			}
		}
	}
	for _, cmd := range []string{"api", "fanout", "deliverer", "recorder"} {
		if _, ok := commands[cmd]; !ok {
			t.Errorf("%s: no service runs hammer %s", composePath, cmd)
		}
	}

	// NATS: TestComposeNATS.
	if pg, ok := p.Services["postgres"]; !ok || pg.HealthCheck == nil {
		t.Errorf("%s: want a postgres service with a healthcheck", composePath)
	}
}

// checkComposeURL checks that the URL in variable name reaches a service of
// the file, with the PostgreSQL service's own user, password and database.
func checkComposeURL(t *testing.T, p *types.Project, where string, env map[string]string, name string) {
	t.Helper()
	raw, ok := env[name]
	if !ok {
		return
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("%s: %s: %v", where, name, err)
		return
	}
	target, ok := p.Services[u.Hostname()]
	if !ok {
		t.Errorf("%s: %s points at %q, which is no service of %s", where, name, u.Hostname(), composePath)
		return
	}
	if name != "HAMMER_DATABASE_URL" {
		return
	}
	pass, _ := u.User.Password()
	want := map[string]string{
		"POSTGRES_USER":     u.User.Username(),
		"POSTGRES_PASSWORD": pass,
		"POSTGRES_DB":       strings.TrimPrefix(u.Path, "/"),
	}
	for k, v := range want {
		if got := target.Environment[k]; got == nil || *got != v {
			t.Errorf("%s: %s does not match %s of service %s", where, name, k, u.Hostname())
		}
	}
}
