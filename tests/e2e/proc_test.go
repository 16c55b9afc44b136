package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one child process of the harness: a hammer service, a
// nats-server or PostgreSQL. Its output goes to a log file that survives
// restarts, so a failing test can show what every process said.
type proc struct {
	name    string
	path    string
	args    []string
	env     []string
	logPath string
	cred    *syscall.Credential // nil: run as the test's own user

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	waitErr  error
	expected bool // the harness stopped or killed it on purpose
	starts   int
	crashes  []string // exits nobody asked for
}

func newProc(name, path, logDir string, env []string, args ...string) *proc {
	return &proc{name: name, path: path, args: args, env: env, logPath: filepath.Join(logDir, name+".log")}
}

// start runs the process. A process that exits without the harness asking
// is recorded as a crash, which the stack's checks report.
func (p *proc) start() error { return p.launch(false) }

// launch starts the process; expected says its exit is not a crash.
func (p *proc) launch(expected bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.exited:
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	out, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the log of %s: %w", p.name, err)
	}
	defer out.Close()
	if p.cred != nil {
		_ = out.Chown(int(p.cred.Uid), int(p.cred.Gid))
	}
	p.starts++
	fmt.Fprintf(out, "=== e2e: start %d of %s at %s\n", p.starts, p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.path, p.args...)
	cmd.Env = p.env
	cmd.Dir = filepath.Dir(p.logPath)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group keeps a Ctrl-C in the terminal for go test;
	// the parent-death signal takes the child down with a test binary that
	// dies without running its cleanups (a -timeout panic, say).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited, p.expected, p.waitErr = cmd, exited, expected, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		if !p.expected {
			p.crashes = append(p.crashes, fmt.Sprintf("%s exited by itself at %s: %v", p.name, time.Now().Format("15:04:05.000"), err))
		}
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// running reports whether the process is up.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the process and waits up to wait for it to exit,
// then kills its whole process group. It reports whether the process left
// within wait.
func (p *proc) signal(sig syscall.Signal, wait time.Duration) bool {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	if cmd == nil {
		p.mu.Unlock()
		return true
	}
	p.expected = true
	p.mu.Unlock()
	select {
	case <-exited:
		return true
	default:
	}
	_ = syscall.Kill(cmd.Process.Pid, sig)
	select {
	case <-exited:
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers of its group
		return true
	case <-time.After(wait):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
	<-exited
	return false
}

// pause sends SIGSTOP (freeze) or SIGCONT (thaw) to the process.
func (p *proc) pause(freeze bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	sig := syscall.SIGCONT
	if freeze {
		sig = syscall.SIGSTOP
	}
	_ = syscall.Kill(p.cmd.Process.Pid, sig)
}

// kill is kill -9.
func (p *proc) kill() { p.signal(syscall.SIGKILL, 10*time.Second) }

// stop asks the process to stop (SIGTERM) and kills it after wait.
func (p *proc) stop(wait time.Duration) bool { return p.signal(syscall.SIGTERM, wait) }

// unexpectedExits lists the exits nobody asked for.
func (p *proc) unexpectedExits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashes...)
}

// run runs the process to its end (a one-shot command such as migrate)
// within timeout and returns its output.
func (p *proc) run(timeout time.Duration) (string, error) {
	if err := p.launch(true); err != nil {
		return "", err
	}
	p.mu.Lock()
	exited := p.exited
	p.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(timeout):
		p.kill()
		return p.tail(50), fmt.Errorf("%s did not finish within %s", p.name, timeout)
	}
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	return p.tail(50), err
}

// tail is the last n lines of the process's log.
func (p *proc) tail(n int) string {
	return tailFile(p.logPath, n)
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 4*n {
			lines = append(lines[:0], lines[len(lines)-n:]...)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// procs is every process one test started: cleanup kills them all, and a
// failed test prints the end of every log.
type procs struct {
	t    testing.TB
	list []*proc
}

func newProcs(t testing.TB) *procs {
	ps := &procs{t: t}
	t.Cleanup(func() {
		if t.Failed() {
			for _, p := range ps.list {
				t.Logf("---- last lines of %s (%s) ----\n%s", p.name, p.logPath, p.tail(80))
			}
		}
		defer ps.keepLogs()
		var wg sync.WaitGroup
		for _, p := range ps.list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.kill()
			}()
		}
		wg.Wait()
	})
	return ps
}

// keepLogs copies every log to $HAMMER_E2E_LOG_DIR/<test>/, when set, for
// reading after the test's temporary directory is gone.
func (ps *procs) keepLogs() {
	root := os.Getenv("HAMMER_E2E_LOG_DIR")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.ReplaceAll(ps.t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		ps.t.Logf("keeping logs: %v", err)
		return
	}
	for _, p := range ps.list {
		if b, err := os.ReadFile(p.logPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, filepath.Base(p.logPath)), b, 0o644)
		}
	}
	ps.t.Logf("logs kept in %s", dir)
}

func (ps *procs) add(p *proc) *proc {
	ps.list = append(ps.list, p)
	return p
}

// crashes lists every exit of a process that the test did not cause.
func (ps *procs) crashes() []string {
	var out []string
	for _, p := range ps.list {
		out = append(out, p.unexpectedExits()...)
	}
	return out
}

// waitFor polls cond every 25 ms until it holds or timeout passes; it
// returns whether it held.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// eventually is waitFor that fails the test.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !waitFor(timeout, cond) {
		t.Fatalf("after %s: "+format, append([]any{timeout}, args...)...)
	}
}
