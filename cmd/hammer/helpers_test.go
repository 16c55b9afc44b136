package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/stretchr/testify/require"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// hammerBinary builds this package once per test run. Under -race it is
// built with -race too, which reuses the test's compiled packages and
// checks the whole process for races.
func hammerBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "hammer-bin-")
		if buildErr != nil {
			return
		}
		binary = filepath.Join(buildDir, "hammer")
		args := []string{"build", "-o", binary}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binary
}

// dataDir is a fresh HAMMER_DATA_DIR that the postgres user can reach
// (t.TempDir's parents are private to root, which would send the cluster
// under /tmp elsewhere, out of the test's sight).
func dataDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "hammer-dev-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(d, 0o755))
	t.Cleanup(func() {
		stopLeftover(t, d)
		_ = os.RemoveAll(d)
	})
	return d
}

// stopLeftover stops a PostgreSQL that a failed test left running in dir,
// so that a failure never leaves a process behind.
func stopLeftover(t *testing.T, dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "postgres", "data", "postmaster.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || !running(pid) {
		return
	}
	t.Logf("stopping PostgreSQL %d left running in %s", pid, dir)
	_ = syscall.Kill(pid, syscall.SIGINT)
	deadline := time.Now().Add(20 * time.Second)
	for running(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
}

// proc is a hammer process started by a test.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	out    *testkit.Output
	done   chan struct{}
	err    error
	env    map[string]string
	stdout *testkit.Output
}

// cleanEnv is the test's environment without HAMMER_* variables (which
// would change what the process under test does), plus env.
func cleanEnv(env map[string]string) []string {
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

// start runs hammer with args and env; the process is killed at the end
// of the test if it is still running.
func start(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, out: &testkit.Output{}, stdout: &testkit.Output{}, done: make(chan struct{}), env: env}
	p.cmd = exec.Command(hammerBinary(t), args...)
	p.cmd.Env = cleanEnv(env)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.out
	require.NoError(t, p.cmd.Start())
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(60 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("hammer %s output:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("hammer did not exit within %s; output:\n%s", timeout, p.out.String())
	}
	if p.err == nil {
		return 0
	}
	var ee *exec.ExitError
	require.ErrorAs(p.t, p.err, &ee)
	return ee.ExitCode()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitHTTP waits until GET url answers 200, failing if the process exits.
func (p *proc) waitHTTP(url string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if p.exited() {
			p.t.Fatalf("hammer exited before %s answered: %v; output:\n%s", url, p.err, p.out.String())
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not answer 200 within %s; output:\n%s", url, timeout, p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// call sends a JSON request and decodes a JSON answer into out (when not nil).
func call(t *testing.T, method, url string, body any, out any) int {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, out), "body: %s", b)
	}
	return resp.StatusCode
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// postmasterPid reads the pid of the cluster hammer dev runs in dir.
func postmasterPid(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postgres", "data", "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	require.NoError(t, err)
	return pid
}

// running reports whether pid is a live process (a zombie is not).
func running(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && err != syscall.EPERM {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return runtime.GOOS != "linux"
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || (b[i+2] != 'Z' && b[i+2] != 'X')
}

// clusterProcesses lists the live processes working in dir's cluster: a
// postmaster and every backend have the data directory as working
// directory. Linux only; elsewhere it returns nil.
func clusterProcesses(dir string) []int {
	want := filepath.Join(dir, "postgres", "data")
	if real, err := filepath.EvalSymlinks(want); err == nil {
		want = real
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err == nil && cwd == want && running(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// requireNothingLeft checks that a stopped hammer dev left no process and
// no pid file behind, and freed its addresses.
func requireNothingLeft(t *testing.T, dir string, postmaster int, addrs ...string) {
	t.Helper()
	require.False(t, running(postmaster), "postmaster %d still runs", postmaster)
	require.Empty(t, clusterProcesses(dir), "processes of the cluster are left")
	_, err := os.Stat(filepath.Join(dir, "postgres", "data", "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "postmaster.pid left behind")
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		require.NoError(t, err, "%s is still taken", a)
		ln.Close()
	}
}

// devEnv is the environment of a hammer dev on random loopback ports.
func devEnv(t *testing.T, dir string) map[string]string {
	return map[string]string{
		"HAMMER_DATA_DIR":      dir,
		"HAMMER_HTTP_ADDR":     testkit.FreeAddr(t),
		"HAMMER_OPS_ADDR":      testkit.FreeAddr(t),
		"HAMMER_DEV_NATS_ADDR": testkit.FreeAddr(t),
	}
}

// startDev starts hammer dev and waits until its ops address answers.
func startDev(t *testing.T, env map[string]string) *proc {
	t.Helper()
	p := start(t, env, "dev")
	p.waitHTTP("http://"+env["HAMMER_OPS_ADDR"]+"/healthz", 2*time.Minute)
	return p
}

// api is the base URL of a process's REST API.
func (p *proc) api() string { return "http://" + p.env["HAMMER_HTTP_ADDR"] }

// createTopic creates a topic, retrying while the API is still preparing.
func createTopic(t *testing.T, api, id string) {
	t.Helper()
	var status int
	eventually(t, 30*time.Second, func() bool {
		status = call(t, http.MethodPost, api+"/v1/topics", map[string]any{"topic": map[string]any{"id": id, "name": id}}, nil)
		return status != http.StatusServiceUnavailable
	}, "the API kept answering 503")
	require.Equal(t, http.StatusOK, status)
}
