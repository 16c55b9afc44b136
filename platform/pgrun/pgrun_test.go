package pgrun

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
)

// dataDir is a data directory every user can reach (t.TempDir's parents are
// private to the test's user, which would send a root test's cluster under
// /tmp; TestFallbackWhenUnreachable covers that on purpose).
func dataDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "pgrun-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(d, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func start(t *testing.T, dir string) *Server {
	t.Helper()
	s, err := Start(context.Background(), Options{DataDir: dir, Config: Config{User: DefaultUser}, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	require.NoError(t, err)
}

func count(t *testing.T, url, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, sql).Scan(&n))
	return n
}

// requireGone checks that the cluster's processes and pid file are gone.
func requireGone(t *testing.T, s *Server) {
	t.Helper()
	require.False(t, alive(s.Pid()), "postmaster %d still runs", s.Pid())
	require.False(t, groupAlive(s.Pid()), "a process of group %d still runs", s.Pid())
	_, err := os.Stat(filepath.Join(s.Dir(), "data", "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "postmaster.pid left behind")
}

func TestStartCreatesThenReuses(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)

	s := start(t, dir)
	require.Equal(t, filepath.Join(dir, "postgres"), s.Dir())
	require.Contains(t, s.URL(), "/hammer?")
	exec1(t, s.URL(), "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)")
	port, err := os.ReadFile(filepath.Join(s.Dir(), "port"))
	require.NoError(t, err)
	require.Contains(t, s.URL(), ":"+strings.TrimSpace(string(port))+"/")
	if os.Geteuid() == 0 {
		info, err := os.Stat(filepath.Join(s.Dir(), "data", "PG_VERSION"))
		require.NoError(t, err)
		acct, err := lookupAccount(DefaultUser)
		require.NoError(t, err)
		require.EqualValues(t, acct.uid, ownerOf(info), "the cluster belongs to the unprivileged user")
	}
	require.NoError(t, s.Stop())
	requireGone(t, s)

	again := start(t, dir)
	require.Equal(t, s.URL(), again.URL(), "the remembered port is used again")
	require.Equal(t, 1, count(t, again.URL(), "SELECT count(*) FROM kept"), "data survives a restart")
	require.NoError(t, again.Stop())
	requireGone(t, again)
}

func TestLeftRunningPostmasterIsReplacedNotDuplicated(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	first := start(t, dir)
	exec1(t, first.URL(), "CREATE TABLE kept (id int)")
	// What a kill -9 of hammer leaves: the postmaster runs on, and the
	// lock (which the kernel drops with the dead process) is free.
	first.unlock()

	second := start(t, dir)
	select {
	case <-first.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the left-over postmaster was not stopped")
	}
	require.NotEqual(t, first.Pid(), second.Pid())
	require.True(t, alive(second.Pid()))
	require.False(t, groupAlive(first.Pid()), "the old cluster's processes are gone")
	require.Equal(t, 0, count(t, second.URL(), "SELECT count(*) FROM kept"))
	require.NoError(t, second.Stop())
	requireGone(t, second)
}

func TestStalePidFileIsIgnored(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	s := start(t, dir)
	require.NoError(t, s.Stop())

	// A pid file naming a process that has exited, as after a reboot.
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	pidPath := filepath.Join(s.Dir(), "data", "postmaster.pid")
	content := fmt.Sprintf("%d\n%s\n", dead.Process.Pid, filepath.Join(s.Dir(), "data"))
	require.NoError(t, os.WriteFile(pidPath, []byte(content), 0o600))

	again := start(t, dir)
	require.NoError(t, again.Stop())
	requireGone(t, again)
}

func TestSecondStartOnTheSameDirectoryIsRefused(t *testing.T) {
	t.Parallel()
	dir := dataDir(t)
	s := start(t, dir)
	_, err := Start(context.Background(), Options{DataDir: dir, Config: Config{User: DefaultUser}})
	require.ErrorContains(t, err, "another hammer dev is running PostgreSQL in "+s.Dir())
	require.True(t, alive(s.Pid()), "the running cluster is left alone")

	// A server on the port counts as ours only if it runs our cluster:
	// another PostgreSQL that won a race for the port must not pass.
	require.True(t, servesUs(context.Background(), s.URL(), filepath.Join(s.Dir(), "data")))
	require.False(t, servesUs(context.Background(), s.URL(), filepath.Join(dir, "another")))
}

func TestFallbackWhenUnreachable(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root runs PostgreSQL as another user")
	}
	t.Parallel()
	// t.TempDir's parents are mode 0700 and owned by root: the postgres
	// user cannot reach them.
	dir := t.TempDir()
	s := start(t, dir)
	t.Cleanup(func() { _ = os.RemoveAll(s.Dir()) })
	require.True(t, strings.HasPrefix(s.Dir(), "/tmp/hammer-"), "cluster in %s", s.Dir())
	recorded, err := os.ReadFile(filepath.Join(dir, locationFile))
	require.NoError(t, err)
	require.Equal(t, s.Dir(), strings.TrimSpace(string(recorded)))
	exec1(t, s.URL(), "CREATE TABLE kept (id int)")
	require.NoError(t, s.Stop())

	again := start(t, dir)
	require.Equal(t, s.Dir(), again.Dir())
	require.Equal(t, 0, count(t, again.URL(), "SELECT count(*) FROM kept"))
	require.NoError(t, again.Stop())
	requireGone(t, again)

	// The data directory goes away (as t.TempDir does): the next start of
	// any other fallback cluster removes the abandoned one.
	require.NoError(t, os.RemoveAll(dir))
	other := start(t, t.TempDir())
	t.Cleanup(func() { _ = os.RemoveAll(other.Dir()) })
	_, err = os.Stat(s.Dir())
	require.ErrorIs(t, err, os.ErrNotExist, "the abandoned cluster under /tmp was removed")
	require.NoError(t, other.Stop())
}

func TestMissingBinariesSayWhatToDo(t *testing.T) {
	empty := t.TempDir()
	t.Setenv("PATH", empty)
	_, err := Start(context.Background(), Options{DataDir: t.TempDir(), Config: Config{BinDirs: empty}})
	require.ErrorIs(t, err, ErrNoBinaries)
	msg := err.Error()
	require.NotContains(t, msg, "\n")
	require.Contains(t, msg, "apt-get install postgresql")
	require.Contains(t, msg, "brew install postgresql@16")
	require.Contains(t, msg, "HAMMER_DATABASE_URL")
}

func TestFindBinariesPrefersTheHighestVersion(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for _, v := range []string{"9.6", "12", "16", "15"} {
		bin := filepath.Join(root, v, "bin")
		require.NoError(t, os.MkdirAll(bin, 0o755))
		for _, name := range []string{"initdb", "postgres"} {
			require.NoError(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755))
		}
	}
	// 17 lacks postgres, so it does not count.
	require.NoError(t, os.MkdirAll(filepath.Join(root, "17", "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "17", "bin", "initdb"), nil, 0o755))

	got, err := FindBinaries(filepath.Join(root, "*", "bin"))
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "16", "bin"), got)
}

func TestUnknownUserSaysWhatToDo(t *testing.T) {
	t.Parallel()
	_, err := lookupAccount("no-such-user-hammer")
	require.ErrorContains(t, err, "HAMMER_DEV_PG_USER")
	require.NotContains(t, err.Error(), "\n")
}

func TestTraversable(t *testing.T) {
	t.Parallel()
	a := &account{name: "someone", uid: 54321, gid: 54321, groups: []uint32{54321}}
	closed, err := os.MkdirTemp("", "pgrun-traverse-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(closed) })
	open := filepath.Join(closed, "open")
	require.NoError(t, os.Mkdir(open, 0o755))
	require.NoError(t, os.Chmod(closed, 0o700))
	require.False(t, a.traversable(open), "a 0700 parent owned by another user blocks the way")
	require.NoError(t, os.Chmod(closed, 0o711))
	require.True(t, a.traversable(filepath.Join(open, "not-yet")), "search permission is enough")
}

func ownerOf(info fs.FileInfo) uint32 {
	return info.Sys().(*syscall.Stat_t).Uid
}
