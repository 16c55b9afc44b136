package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hammer-webhooks/hammer/platform/pgrun"
)

// postgres is a throwaway PostgreSQL server the tests can stop and start
// again on the same port and data directory. It runs from the machine's
// binaries, as the unprivileged HAMMER_TEST_PG_USER (default postgres)
// when the tests run as root, with durability off: its data dies with it.
type postgres struct {
	dir  string // root of its files, under /tmp so any user can reach it
	port int
	proc *proc
}

// startPostgres creates a cluster in a new directory and starts it.
func startPostgres() (*postgres, error) {
	bin, err := pgrun.FindBinaries(os.Getenv("HAMMER_DEV_PG_BIN_DIRS"))
	if err != nil {
		return nil, err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		name := os.Getenv("HAMMER_TEST_PG_USER")
		if name == "" {
			name = "postgres"
		}
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("the tests run as root and PostgreSQL will not: there is no user %q to run it as (set HAMMER_TEST_PG_USER): %w", name, err)
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	// A short path under /tmp: the user reaches it wherever the checkout
	// is, and the unix socket's path stays within its limit.
	dir, err := tempDir("hammer-e2e-pg-")
	if err != nil {
		return nil, fmt.Errorf("creating PostgreSQL's directory: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("giving %s to PostgreSQL's user: %w", dir, err)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "LC_ALL=C"}
	data := filepath.Join(dir, "data")
	initdb := newProc("initdb", filepath.Join(bin, "initdb"), dir, env,
		"-D", data, "-U", "hammer", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	initdb.cred = cred
	if out, err := initdb.run(2 * time.Minute); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := &postgres{dir: dir, port: port}
	p.proc = newProc("postgres", filepath.Join(bin, "postgres"), dir, env,
		"-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=128MB",
		"-c", "logging_collector=off")
	p.proc.cred = cred
	if err := p.start(); err != nil {
		p.remove()
		return nil, err
	}
	return p, nil
}

// start runs the server and waits until it accepts connections.
func (p *postgres) start() error {
	if err := p.proc.start(); err != nil {
		return err
	}
	ok := waitFor(time.Minute, func() bool {
		if !p.proc.running() {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, p.url("postgres"))
		if err != nil {
			return false
		}
		conn.Close(ctx)
		return true
	})
	if !ok || !p.proc.running() {
		p.proc.kill()
		return fmt.Errorf("PostgreSQL did not start:\n%s", p.proc.tail(30))
	}
	return nil
}

// stop shuts the server down the fast way (sessions ended, a checkpoint),
// as an operator's restart does.
func (p *postgres) stop() {
	p.proc.signal(syscall.SIGINT, 30*time.Second)
}

// remove kills the server and deletes its files.
func (p *postgres) remove() {
	p.proc.kill()
	os.RemoveAll(p.dir)
}

// url is the address of database db.
func (p *postgres) url(db string) string {
	return fmt.Sprintf("postgres://hammer@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

// createDatabase makes an empty database for one stack.
func (p *postgres) createDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, p.url("postgres"))
	if err != nil {
		return "", fmt.Errorf("connecting to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("creating database %s: %w", name, err)
	}
	return p.url(name), nil
}
