package deploy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hammer-webhooks/hammer/platform/testkit"
)

// TestComposeServicesRun runs every hammer service of docker-compose.yml as
// the binary the image holds, with the file's environment (PostgreSQL and
// NATS pointed at this test's, addresses at free loopback ports), and checks
// that each serves its health check, that a stop is clean, and that the API
// refuses a delivery timeout the deliverer's stop grace would not cover.
func TestComposeServicesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the services as processes")
	}
	t.Parallel()
	c := hammer(t)
	p := loadCompose(t)
	db := testkit.NewDB(t)
	nats := testkit.NewNATS(t)

	var names []string
	for name, s := range p.Services {
		if isHammer(s) && len(s.Command) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	// The migration first, as depends_on orders it.
	slices.SortStableFunc(names, func(a, b string) int {
		am, bm := p.Services[a].Command[0] == "migrate", p.Services[b].Command[0] == "migrate"
		switch {
		case am && !bm:
			return -1
		case bm && !am:
			return 1
		}
		return 0
	})

	var running []*service
	for _, name := range names {
		s := p.Services[name]
		env := map[string]string{}
		for k, v := range s.Environment {
			if v != nil {
				env[k] = *v
			}
		}
		if _, ok := env["HAMMER_DATABASE_URL"]; ok {
			env["HAMMER_DATABASE_URL"] = db.URL
		}
		if _, ok := env["HAMMER_NATS_URL"]; ok {
			env["HAMMER_NATS_URL"] = nats.URL
		}
		if s.Command[0] == "migrate" {
			out, err := runToEnd(t, c.bin, s.Command, env, time.Minute)
			if err != nil {
				t.Fatalf("%s: service %s: hammer %s: %v\n%s", composePath, name, strings.Join(s.Command, " "), err, out)
			}
			continue
		}
		replicas := 1
		if s.Deploy != nil && s.Deploy.Replicas != nil {
			replicas = *s.Deploy.Replicas
		}
		for i := range replicas {
			// Free ports instead of 8000 and 9090: other tests share this
			// machine.
			env["HAMMER_HTTP_ADDR"] = testkit.FreeAddr(t)
			env["HAMMER_OPS_ADDR"] = testkit.FreeAddr(t)
			svc := start(t, fmt.Sprintf("%s-%d", name, i+1), c.bin, s.Command, env)
			svc.base = "http://" + env[servingVariable(s.Command[0])]
			svc.grace = 10 * time.Second // docker's default stop timeout
			if s.StopGracePeriod != nil {
				svc.grace = time.Duration(*s.StopGracePeriod)
			}
			svc.check = "/readyz"
			if s.HealthCheck != nil && len(s.HealthCheck.Test) == 3 {
				svc.probe = c.image[s.HealthCheck.Test[1]]
				svc.check = strings.TrimPrefix(s.HealthCheck.Test[2], "http://")
				if i := strings.Index(svc.check, "/"); i >= 0 {
					svc.check = svc.check[i:]
				}
			}
			running = append(running, svc)
		}
	}

	client := &http.Client{Timeout: 5 * time.Second}
	for _, svc := range running {
		where := fmt.Sprintf("%s: service %s", composePath, svc.name)
		deadline := time.Now().Add(90 * time.Second)
		for get(client, svc.base+svc.check) != http.StatusOK {
			if svc.exited() {
				t.Fatalf("%s: hammer %s exited on start: %v\n%s", where, strings.Join(svc.args, " "), svc.err, svc.output())
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: GET %s%s did not answer 200 within 90s; output:\n%s", where, svc.base, svc.check, svc.output())
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%s: hammer %s ready: GET %s%s answered 200", where, strings.Join(svc.args, " "), svc.base, svc.check)
		// The compose healthcheck's own command passes now, and fails
		// where nothing answers.
		if svc.probe != "" {
			if out, err := exec.Command(svc.probe, svc.base+svc.check).CombinedOutput(); err != nil {
				t.Errorf("%s: healthcheck %s %s%s: %v\n%s", where, filepath.Base(svc.probe), svc.base, svc.check, err, out)
			}
			if err := exec.Command(svc.probe, "http://"+testkit.FreeAddr(t)+svc.check).Run(); err == nil {
				t.Errorf("%s: healthcheck %s passes against a port nothing listens on", where, filepath.Base(svc.probe))
			}
		}
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			if code := get(client, svc.base+path); code != http.StatusOK {
				t.Errorf("%s: GET %s%s: %d, want 200", where, svc.base, path, code)
			}
		}
	}

	// The API holds delivery_attempt_timeout to maxDeliveryAttemptTimeout,
	// the bound the deliverer's stop grace periods are checked against.
	if i := slices.IndexFunc(running, func(s *service) bool { return s.args[0] == "api" }); i >= 0 {
		api := running[i].base
		post(t, client, api+"/v1/topics", `{"topic": {"id": "deploy-test", "name": "deploy test"}}`, http.StatusOK)
		limit := int(maxDeliveryAttemptTimeout / time.Second)
		for _, tc := range []struct {
			timeout, want int
		}{{limit, http.StatusOK}, {limit + 1, http.StatusBadRequest}} {
			post(t, client, api+"/v1/subscriptions", fmt.Sprintf(
				`{"subscription": {"id": "deploy-test-%d", "topic_id": "deploy-test", "name": "deploy test", "url": "https://receiver.invalid/hook", "delivery_attempt_timeout": %d}}`,
				tc.timeout, tc.timeout), tc.want)
		}
	}

	// A stop (SIGTERM, as docker compose stop sends) ends each service
	// cleanly within its grace period.
	var wg sync.WaitGroup
	for _, svc := range running {
		wg.Add(1)
		go func() {
			defer wg.Done()
			begin := time.Now()
			if err := svc.stop(); err != nil {
				t.Errorf("%s: service %s: %v\n%s", composePath, svc.name, err, svc.output())
				return
			}
			t.Logf("%s: service %s stopped cleanly %s after SIGTERM", composePath, svc.name, time.Since(begin).Round(time.Millisecond))
		}()
	}
	wg.Wait()
}

// service is one hammer process of the test.
type service struct {
	name, base, check string
	probe             string // the local build of the health check binary
	args              []string
	grace             time.Duration
	cmd               *exec.Cmd
	out               *testkit.Output
	done              chan struct{}
	err               error
}

func start(t *testing.T, name, bin string, args []string, env map[string]string) *service {
	t.Helper()
	svc := &service{name: name, args: args, out: &testkit.Output{}, done: make(chan struct{})}
	svc.cmd = exec.Command(bin, args...)
	svc.cmd.Env = processEnv(env)
	svc.cmd.Dir = t.TempDir()
	svc.cmd.Stdout, svc.cmd.Stderr = svc.out, svc.out
	if err := svc.cmd.Start(); err != nil {
		t.Fatalf("starting hammer %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		svc.err = svc.cmd.Wait()
		close(svc.done)
	}()
	t.Cleanup(func() {
		if !svc.exited() {
			svc.cmd.Process.Kill()
			<-svc.done
		}
	})
	return svc
}

func (s *service) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *service) output() string { return s.out.String() }

// stop sends SIGTERM and wants exit status 0 within the grace period.
func (s *service) stop() error {
	if s.exited() {
		return fmt.Errorf("hammer %s had exited before the stop: %v", s.args[0], s.err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	select {
	case <-s.done:
		if s.err != nil {
			return fmt.Errorf("hammer %s after SIGTERM: %v, want exit status 0", s.args[0], s.err)
		}
		return nil
	case <-time.After(s.grace):
		return fmt.Errorf("hammer %s still running %s after SIGTERM (its grace period): it would be killed", s.args[0], s.grace)
	}
}

// runToEnd runs a one-shot command such as hammer migrate up.
func runToEnd(t *testing.T, bin string, args []string, env map[string]string, timeout time.Duration) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = processEnv(env)
	cmd.Dir = t.TempDir()
	return cmd.CombinedOutput()
}

// processEnv is this process's environment without its HAMMER_* variables,
// plus env: a service sees only what the compose file gives it.
func processEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HAMMER_") {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func get(client *http.Client, url string) int {
	resp, err := client.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func post(t *testing.T, client *http.Client, url, body string, want int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+composeToken)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Errorf("POST %s %s: %d %s, want %d", url, body, resp.StatusCode, got, want)
	}
}
