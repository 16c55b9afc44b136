// Package testkit gives each test what it needs, isolated from every other
// test: its own migrated PostgreSQL database, cloned from a template, and its
// own embedded JetStream server on a random port with temporary storage.
package testkit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hammer-webhooks/hammer/platform/topology"
	"github.com/hammer-webhooks/hammer/sql/migrations"
)

// EnvDatabaseURL names the server tests create their databases on. make test
// sets it (starting a throwaway PostgreSQL when it is unset).
const EnvDatabaseURL = "HAMMER_TEST_DATABASE_URL"

// DB is one test's database.
type DB struct {
	URL  string
	Pool *pgxpool.Pool
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// NewDB creates a fresh, migrated database for t and drops it afterwards.
func NewDB(t testing.TB) *DB {
	t.Helper()
	base := os.Getenv(EnvDatabaseURL)
	if base == "" {
		t.Fatalf("%s is not set: run the tests with make test, which starts PostgreSQL", EnvDatabaseURL)
	}
	ctx := context.Background()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx, base) })
	require.NoError(t, templateErr, "preparing template database")

	name := "test_" + strings.ToLower(ulid.Make().String())
	admin, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	defer admin.Close(ctx)
	// Creating from a template fails while another session is connected to
	// it (another package's process may be creating it right now): retry.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{templateName}.Sanitize()))
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	require.NoError(t, err, "creating test database")

	dbURL := withDatabase(t, base, name)
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Logf("dropping %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	return &DB{URL: dbURL, Pool: pool}
}

// ensureTemplate creates, once per migration set, a migrated database to
// clone. Its name carries a hash of the migrations, so a changed migration
// gets a new template; an advisory lock keeps parallel test processes from
// building it twice.
func ensureTemplate(ctx context.Context, base string) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	name := "hammer_template_" + hex.EncodeToString(h.Sum(nil))[:16]

	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("connecting to %s: %w", EnvDatabaseURL, err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return "", err
	}
	defer admin.Exec(ctx, "SELECT pg_advisory_unlock(727274)") //nolint:errcheck

	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	if err := migrations.Up(u.String()); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+ident+" WITH is_template = true ALLOW_CONNECTIONS = false"); err != nil {
		return "", err
	}
	return name, nil
}

// DatabaseURL returns base with its database replaced by name.
func withDatabase(t testing.TB, base, name string) string {
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

// NATS is one test's JetStream server and a connection to it.
type NATS struct {
	Server *server.Server
	URL    string
	Conn   *nats.Conn
	JS     jetstream.JetStream
}

// NewNATS starts an embedded JetStream server for t on a random loopback
// port with storage in a temporary directory, applies hammer's topology and
// shuts everything down afterwards.
func NewNATS(t testing.TB) *NATS {
	t.Helper()
	n := StartNATS(t, t.TempDir())
	require.NoError(t, topology.Ensure(context.Background(), n.JS, topology.DefaultConfig()))
	return n
}

// StartNATS starts an embedded JetStream server storing under dir, without
// applying the topology (tests of the topology itself use it).
func StartNATS(t testing.TB, dir string) *NATS {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	}
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	go srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second), "embedded NATS did not start")
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	t.Cleanup(func() {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &NATS{Server: srv, URL: srv.ClientURL(), Conn: nc, JS: js}
}

// Logger is a zap logger that writes through t.
func Logger(t testing.TB) *zap.Logger {
	return zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
}

// Eventually polls cond every 20 ms until it holds or timeout passes, then
// fails t with msg.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
