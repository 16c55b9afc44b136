package pgrun

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// withoutPassword is u with its password removed.
func withoutPassword(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	u.User = url.User(u.User.Username())
	return u.String()
}

// requireRefused checks that nobody gets in without the password: not a
// connection that gives none, and not another OS user with psql.
func requireRefused(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bare := withoutPassword(t, s.URL())
	conn, err := pgx.Connect(ctx, bare)
	if err == nil {
		conn.Close(ctx)
	}
	require.Error(t, err, "a connection without the password got in")

	if os.Geteuid() != 0 {
		return
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Log("no psql: skipping the other-user check")
		return
	}
	out, err := exec.CommandContext(ctx, "runuser", "-u", "nobody", "--", psql, "-w", bare, "-c", "SELECT 1").CombinedOutput()
	require.Error(t, err, "user nobody got into hammer dev's PostgreSQL: %s", out)
	require.Contains(t, string(out), "password", "refused for want of a password")
}

func TestOnlyThePasswordGetsIn(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	s := start(t, dir)
	info, err := os.Stat(filepath.Join(s.Dir(), PasswordFile))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	require.Equal(t, 1, count(t, s.URL(), "SELECT 1"), "hammer itself connects")
	requireRefused(t, s)
}

// A cluster made by an earlier hammer (trust authentication, no password
// file) is converted at start and keeps its data.
func TestTrustClusterIsConverted(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	s := start(t, dir)
	exec1(t, s.URL(), "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1); ALTER ROLE hammer PASSWORD NULL")
	require.NoError(t, s.Stop())
	requireGone(t, s)
	// What initdb --auth=trust wrote.
	require.NoError(t, os.WriteFile(filepath.Join(s.Dir(), "data", "pg_hba.conf"),
		[]byte("local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n"), 0o600))
	require.NoError(t, os.Remove(filepath.Join(s.Dir(), PasswordFile)))

	again := start(t, dir)
	require.Equal(t, 1, count(t, again.URL(), "SELECT count(*) FROM kept"), "data survives the conversion")
	requireRefused(t, again)
	require.NoError(t, again.Stop())

	third := start(t, dir)
	// The port may differ (another test can take it meanwhile); the
	// password may not.
	before, err := url.Parse(again.URL())
	require.NoError(t, err)
	after, err := url.Parse(third.URL())
	require.NoError(t, err)
	require.Equal(t, before.User.String(), after.User.String(), "the password is kept")
	require.Equal(t, 1, count(t, third.URL(), "SELECT count(*) FROM kept"))
}
