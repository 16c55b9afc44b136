// Package pgrun runs a private PostgreSQL cluster from the machine's own
// server binaries, so that hammer dev needs no database set up by hand.
//
// The cluster is created (initdb) on first start and reused after. It runs
// in its own process group, so a Ctrl-C in the terminal reaches only hammer,
// which then stops it in order; as an unprivileged user when hammer runs as
// root; and a postmaster left running by a hammer that was killed is found
// through its postmaster.pid and stopped before a new one starts, never
// duplicated. Every failure a person can fix is one line that says how.
package pgrun

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"
)

const (
	// DefaultUser runs PostgreSQL when hammer is root: Debian's and most
	// packages' PostgreSQL user.
	DefaultUser = "postgres"
	// DefaultPort is tried first; it is not 5432 so that a system
	// PostgreSQL on the same machine is left alone.
	DefaultPort = 5433
	// DatabaseName is the database hammer uses in the cluster.
	DatabaseName = "hammer"
	// superuser is the cluster's superuser, authenticated by the password
	// in PasswordFile on loopback and the unix socket alike.
	superuser = "hammer"
)

// Config is what a person may set for the self-run PostgreSQL; hammer dev
// reads it from the environment.
type Config struct {
	User    string `env:"HAMMER_DEV_PG_USER" envDefault:"postgres" desc:"when hammer dev runs as root, the unprivileged user its own PostgreSQL runs as"`
	BinDirs string `env:"HAMMER_DEV_PG_BIN_DIRS" desc:"directories (colon-separated, globs allowed) searched for initdb and postgres before PATH, replacing the usual install locations"`
}

// LoadConfig reads Config from the environment.
func LoadConfig() (Config, error) {
	var c Config
	if err := env.Parse(&c); err != nil {
		return c, fmt.Errorf("reading HAMMER_DEV_PG_* variables: %w", err)
	}
	return c, nil
}

// Options say where and how to run the cluster.
type Options struct {
	// DataDir is hammer's data directory; the cluster goes in its
	// "postgres" subdirectory, or under /tmp when the user PostgreSQL runs
	// as cannot reach it.
	DataDir string
	Config  Config
	Logger  *zap.Logger
	// StartTimeout bounds initdb plus the server's start; 0 means 2 minutes.
	StartTimeout time.Duration
}

// Server is a running cluster.
type Server struct {
	url      string
	password string
	dir      string
	pid      int
	log      *zap.Logger
	lock     *os.File
	exited   chan struct{}
	waitErr  error
	stop     sync.Once
	stopErr  error
}

// redacted is a database URL without its password, for the log.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Redacted()
}

// URL is the database URL of the hammer database, password included.
func (s *Server) URL() string { return s.url }

// Dir is the directory holding the cluster, its log and its socket.
func (s *Server) Dir() string { return s.dir }

// Pid is the postmaster's process ID (also its process group's).
func (s *Server) Pid() int { return s.pid }

// Done is closed when the postmaster exits, stopped or not.
func (s *Server) Done() <-chan struct{} { return s.exited }

// Err says why the postmaster exited; it is meaningful once Done is closed.
func (s *Server) Err() error {
	select {
	case <-s.exited:
		if s.waitErr != nil {
			return fmt.Errorf("PostgreSQL exited (see %s): %w", filepath.Join(s.dir, "postgres.log"), s.waitErr)
		}
		return fmt.Errorf("PostgreSQL exited (see %s)", filepath.Join(s.dir, "postgres.log"))
	default:
		return nil
	}
}

// Preflight checks, without starting anything, what Start needs from the
// machine: the server binaries and, when hammer is root, an unprivileged
// user. hammer dev calls it first so that a missing piece is reported
// before anything else starts.
func Preflight(cfg Config) error {
	if _, err := FindBinaries(cfg.BinDirs); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		if _, err := lookupAccount(cfg.User); err != nil {
			return err
		}
	}
	return nil
}

// Start runs the cluster, creating it on first use, and returns once the
// hammer database accepts connections.
func Start(ctx context.Context, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	bin, err := FindBinaries(opts.Config.BinDirs)
	if err != nil {
		return nil, err
	}
	var acct *account
	if os.Geteuid() == 0 {
		if acct, err = lookupAccount(opts.Config.User); err != nil {
			return nil, err
		}
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("HAMMER_DATA_DIR=%q: %w", opts.DataDir, err)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create HAMMER_DATA_DIR %s (%v): set HAMMER_DATA_DIR to a directory you can write", dataDir, unwrapPath(err))
	}
	pl := place(dataDir, acct)
	if err := prepare(pl.dir, acct); err != nil {
		return nil, err
	}
	lock, err := lockDir(pl.dir)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: pl.dir, log: log, lock: lock, exited: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			s.unlock()
		}
	}()
	if acct != nil {
		sweepFallbacks(log, acct, pl.dir)
	}
	if pl.fallback {
		if err := os.WriteFile(filepath.Join(pl.dir, ownerFile), []byte(dataDir+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("recording whose PostgreSQL %s is: %w", pl.dir, err)
		}
		log.Info("PostgreSQL's files are under /tmp: its user cannot reach the data directory",
			zap.String("dir", pl.dir), zap.String("user", acct.name), zap.String("data_dir", dataDir))
		if err := os.WriteFile(filepath.Join(dataDir, locationFile), []byte(pl.dir+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("recording where PostgreSQL lives: %w", err)
		}
	} else {
		_ = os.Remove(filepath.Join(dataDir, locationFile))
	}

	sock, err := socketDir(pl.dir, acct)
	if err != nil {
		return nil, err
	}
	pgdata := filepath.Join(pl.dir, "data")
	if err := clearLeftover(log, pgdata); err != nil {
		return nil, err
	}
	// No postmaster of this cluster runs now and the socket directory is
	// private to it: socket lock files left by a killed one would only make
	// PostgreSQL refuse to start if their pid has since been reused.
	if stale, _ := filepath.Glob(filepath.Join(sock, ".s.PGSQL.*")); len(stale) > 0 {
		for _, f := range stale {
			_ = os.Remove(f)
		}
	}
	if pl.stale {
		log.Info("removing a PostgreSQL cluster left by an earlier data directory of the same path", zap.String("dir", pgdata))
		if err := os.RemoveAll(pgdata); err != nil {
			return nil, fmt.Errorf("removing the stale cluster %s: %w", pgdata, err)
		}
	}
	fresh := !hasCluster(pl.dir)
	pw, err := password(pl.dir, fresh)
	if err != nil {
		return nil, err
	}
	s.password = pw
	if fresh {
		if err := initdb(ctx, log, bin, pl.dir, acct, pw); err != nil {
			return nil, err
		}
	}
	port := choosePort(pl.dir)
	for try := 1; ; try++ {
		err = s.run(ctx, bin, pgdata, sock, port, acct)
		if err == nil {
			break
		}
		if !errors.Is(err, errPortTaken) || try == 3 {
			return nil, err
		}
		next, ferr := freePort()
		if ferr != nil {
			return nil, err
		}
		log.Info("PostgreSQL's port was taken; trying another", zap.Int("port", port), zap.Int("next", next))
		port = next
	}
	_ = os.WriteFile(filepath.Join(pl.dir, "port"), []byte(strconv.Itoa(port)+"\n"), 0o644)

	if trusting(pgdata) {
		if err := convert(ctx, log, pgdata, port, pw); err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	if err := ensureDatabase(ctx, port, pw); err != nil {
		_ = s.Stop()
		return nil, err
	}
	s.url = databaseURL(port, DatabaseName, pw)
	log.Info("PostgreSQL ready", zap.String("url", redacted(s.url)), zap.String("password_file", filepath.Join(pl.dir, PasswordFile)), zap.String("dir", pl.dir),
		zap.String("socket_dir", sock), zap.String("binaries", bin), zap.Int("pid", s.pid))
	ok = true
	return s, nil
}

func databaseURL(port int, db, password string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(superuser, password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Path: "/" + db, RawQuery: "sslmode=disable"}
	return u.String()
}

// clearLeftover deals with a postmaster.pid left in pgdata: the postmaster
// of a hammer that was killed is stopped (it would refuse a second one, and
// its settings may be out of date); a file naming a dead process is removed.
func clearLeftover(log *zap.Logger, pgdata string) error {
	pf, found, err := readPidFile(pgdata)
	if err != nil || !found {
		return err
	}
	pidPath := filepath.Join(pgdata, "postmaster.pid")
	if !alive(pf.pid) {
		log.Info("removing a stale postmaster.pid (its process is gone)", zap.Int("pid", pf.pid))
		if err := os.Remove(pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing stale %s: %w", pidPath, err)
		}
		return nil
	}
	if !servesDataDir(pf.pid, pgdata) {
		return fmt.Errorf("%s names process %d, which is running but is not PostgreSQL on this directory: if no PostgreSQL uses %s, remove that file", pidPath, pf.pid, pgdata)
	}
	log.Warn("found the PostgreSQL an earlier hammer left running; stopping it before starting afresh",
		zap.Int("pid", pf.pid), zap.String("dir", pgdata))
	gone := func() bool { return !alive(pf.pid) }
	for _, m := range shutdownModes[1:] {
		_ = syscall.Kill(pf.pid, m.signal)
		if waitGone(gone, 15*time.Second) {
			break
		}
	}
	if !gone() {
		_ = syscall.Kill(-pf.pid, syscall.SIGKILL)
		_ = syscall.Kill(pf.pid, syscall.SIGKILL)
		if !waitGone(gone, 5*time.Second) {
			return fmt.Errorf("the PostgreSQL left running in %s (pid %d) does not stop: stop it by hand", pgdata, pf.pid)
		}
	}
	waitGone(func() bool { return !groupAlive(pf.pid) }, 5*time.Second)
	// A postmaster stopped immediately or killed leaves its pid file.
	_ = os.Remove(pidPath)
	return nil
}

func initdb(ctx context.Context, log *zap.Logger, bin, dir string, acct *account, pw string) error {
	tmp := filepath.Join(dir, "data.initdb")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing a half-made cluster %s: %w", tmp, err)
	}
	logPath := filepath.Join(dir, "initdb.log")
	out, err := openLog(logPath, acct)
	if err != nil {
		return err
	}
	defer out.Close()
	// initdb runs as the cluster's user, who may not read PasswordFile:
	// it gets a copy of its own, gone once the cluster is made.
	pwfile := filepath.Join(dir, "initdb.password")
	if err := os.WriteFile(pwfile, []byte(pw+"\n"), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", pwfile, err)
	}
	defer os.Remove(pwfile)
	if acct != nil {
		if err := os.Chown(pwfile, int(acct.uid), int(acct.gid)); err != nil {
			return fmt.Errorf("giving %s to %s: %w", pwfile, acct, err)
		}
	}
	log.Info("creating a PostgreSQL cluster (first start)", zap.String("dir", filepath.Join(dir, "data")), zap.Stringer("user", acct))
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", tmp, "-U", superuser,
		"--auth=scram-sha-256", "--pwfile="+pwfile, "-E", "UTF8", "--no-locale")
	cmd.Dir = dir
	cmd.Env = childEnv(dir, acct)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: acct.credential()}
	// Interrupted, initdb goes with the postgres processes it started.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("initdb did not finish: %w", ctx.Err())
		}
		return fmt.Errorf("initdb failed (%v; see %s): %s", err, logPath, lastLine(logPath))
	}
	if err := os.WriteFile(filepath.Join(tmp, "pg_hba.conf"), []byte(hbaConf), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "data")); err != nil {
		return fmt.Errorf("moving the new cluster in place: %w", err)
	}
	return nil
}

var errPortTaken = errors.New("port taken")

// run starts the postmaster and waits until it accepts connections.
func (s *Server) run(ctx context.Context, bin, pgdata, sock string, port int, acct *account) error {
	logPath := filepath.Join(s.dir, "postgres.log")
	if info, err := os.Stat(logPath); err == nil && info.Size() > 0 {
		_ = os.Rename(logPath, logPath+".1")
	}
	out, err := openLog(logPath, acct)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", pgdata, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+quoteList(sock),
		"-c", "logging_collector=off",
		"-c", "max_connections=200")
	cmd.Dir = s.dir
	cmd.Env = childEnv(s.dir, acct)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: the terminal's Ctrl-C reaches hammer, which
	// stops PostgreSQL in order, and never PostgreSQL directly.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: acct.credential()}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	out.Close() // the child has its own copy
	s.pid = cmd.Process.Pid
	exited := make(chan struct{})
	s.exited = exited
	go func() {
		s.waitErr = cmd.Wait()
		close(exited)
	}()

	admin := databaseURL(port, "postgres", s.password) + "&connect_timeout=2"
	for {
		select {
		case <-exited:
			msg := lastLine(logPath)
			if strings.Contains(msg, "could not bind") || strings.Contains(msg, "could not create any TCP/IP sockets") ||
				strings.Contains(readAll(logPath), "Address already in use") {
				return fmt.Errorf("%w: %s", errPortTaken, msg)
			}
			return fmt.Errorf("PostgreSQL did not start (see %s): %s", logPath, msg)
		case <-ctx.Done():
			_ = s.Stop()
			return fmt.Errorf("PostgreSQL did not become ready (see %s): %w", logPath, ctx.Err())
		default:
		}
		if servesUs(ctx, admin, pgdata) {
			return nil
		}
		select {
		case <-exited:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// servesUs reports whether the server answering at url runs on pgdata.
// Another PostgreSQL may hold the port (one that won a race for it while
// ours failed to bind and is about to exit): it must not pass for ours.
func servesUs(ctx context.Context, url, pgdata string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var dir string
	if err := conn.QueryRow(ctx, "SELECT current_setting('data_directory')").Scan(&dir); err != nil {
		return false
	}
	return samePath(dir, pgdata)
}

func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

func ensureDatabase(ctx context.Context, port int, pw string) error {
	conn, err := pgx.Connect(ctx, databaseURL(port, "postgres", pw))
	if err != nil {
		return fmt.Errorf("connecting to the new PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", DatabaseName).Scan(&exists); err != nil {
		return fmt.Errorf("looking for database %s: %w", DatabaseName, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{DatabaseName}.Sanitize()); err != nil {
			return fmt.Errorf("creating database %s: %w", DatabaseName, err)
		}
	}
	return nil
}

// Stop shuts PostgreSQL down: smart (wait for clients to leave), then fast,
// then immediate, then SIGKILL to its process group, each after a bounded
// wait. It returns when no process of the cluster is left.
func (s *Server) Stop() error {
	s.stop.Do(func() {
		defer s.unlock()
		if s.pid == 0 {
			return
		}
		waits := []time.Duration{5 * time.Second, 20 * time.Second, 5 * time.Second}
		stopped := false
		for i, m := range shutdownModes {
			select {
			case <-s.exited:
				stopped = true
			default:
			}
			if stopped {
				break
			}
			s.log.Info("stopping PostgreSQL", zap.String("mode", m.name), zap.Int("pid", s.pid))
			_ = syscall.Kill(s.pid, m.signal)
			select {
			case <-s.exited:
				stopped = true
			case <-time.After(waits[i]):
			}
		}
		if !stopped {
			s.log.Warn("PostgreSQL did not stop; killing it", zap.Int("pid", s.pid))
			_ = syscall.Kill(-s.pid, syscall.SIGKILL)
			<-s.exited
			s.stopErr = errors.New("PostgreSQL had to be killed")
		}
		if !waitGone(func() bool { return !groupAlive(s.pid) }, 5*time.Second) {
			_ = syscall.Kill(-s.pid, syscall.SIGKILL)
		}
		s.log.Info("PostgreSQL stopped")
	})
	return s.stopErr
}

func (s *Server) unlock() {
	if s.lock != nil {
		_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
		_ = s.lock.Close()
		s.lock = nil
	}
}

// lockDir takes an exclusive lock on dir for as long as this process runs
// its cluster; the kernel drops it when the process dies, however it dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "hammer.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the lock of %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another hammer dev is running PostgreSQL in %s: stop it first, or set HAMMER_DATA_DIR to another directory", dir)
		}
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return f, nil
}

// choosePort is the port remembered in dir, else DefaultPort, else any free
// one, whichever is free first.
func choosePort(dir string) int {
	var candidates []int
	if b, err := os.ReadFile(filepath.Join(dir, "port")); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 && p < 65536 {
			candidates = append(candidates, p)
		}
	}
	candidates = append(candidates, DefaultPort)
	for _, p := range candidates {
		if ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p))); err == nil {
			ln.Close()
			return p
		}
	}
	p, err := freePort()
	if err != nil {
		return DefaultPort // the start then fails and says so
	}
	return p
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// openLog opens a log file for a child, owned by the child's user so it can
// be read without root.
func openLog(path string, acct *account) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if acct != nil {
		_ = f.Chown(int(acct.uid), int(acct.gid))
	}
	return f, nil
}

// childEnv is hammer's environment, with HOME pointing at dir when the child
// runs as another user (whose home is not root's).
func childEnv(dir string, acct *account) []string {
	env := os.Environ()
	if acct == nil {
		return env
	}
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "HOME=") {
			out = append(out, kv)
		}
	}
	return append(out, "HOME="+dir)
}

// quoteList quotes a directory for a list setting when it holds a space or comma.
func quoteList(dir string) string {
	if strings.ContainsAny(dir, " ,\"") {
		return `"` + strings.ReplaceAll(dir, `"`, `""`) + `"`
	}
	return dir
}

func readAll(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// lastLine is the last non-empty line of a log, for a one-line error.
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log)"
	}
	defer f.Close()
	last := "(empty log)"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	return last
}
