package e2e

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Built once per run of the test binary by TestMain.
var (
	hammerBin string // the hammer binary, built without -race
	natsBin   string // nats-server at the version the workspace embeds
	sharedPG  *postgres
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped by -short")
		os.Exit(0)
	}
	os.Exit(setupAndRun(m))
}

func setupAndRun(m *testing.M) int {
	removeStale()
	dir, err := tempDir("hammer-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	started := time.Now()
	hammerBin = filepath.Join(dir, "hammer")
	natsBin = filepath.Join(dir, "nats-server")
	for _, b := range []struct{ out, pkg string }{
		{hammerBin, "github.com/hammer-webhooks/hammer/cmd/hammer"},
		{natsBin, "github.com/nats-io/nats-server/v2"},
	} {
		if err := build(b.out, b.pkg); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			return 1
		}
	}
	fmt.Printf("e2e: built hammer and nats-server in %s\n", time.Since(started).Round(time.Millisecond))

	sharedPG, err = startPostgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: starting PostgreSQL:", err)
		return 1
	}
	defer sharedPG.remove()
	code := m.Run()
	statsMu.Lock()
	defer statsMu.Unlock()
	if len(allStats) > 0 {
		fmt.Println("e2e: load runs")
		for _, s := range allStats {
			fmt.Println("  " + s.String())
		}
	}
	fmt.Printf("e2e: done in %s\n", time.Since(started).Round(time.Second))
	return code
}

// ownerFile, in each directory the tests make under /tmp, holds the pid of
// the test binary that made it.
const ownerFile = "e2e-owner.pid"

// tempDir makes a directory under /tmp that names its owner, so that a
// later run can remove it should this one die before its cleanup (a
// -timeout panic skips deferred calls; the children die with the binary,
// their files stay).
func tempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// removeStale removes the directories of earlier runs whose test binary is
// gone.
func removeStale() {
	dirs, _ := filepath.Glob("/tmp/hammer-e2e-*")
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(dir)
		}
	}
}

// build compiles pkg without -race (whatever the tests themselves run
// with): the binaries are the system under test, not the test.
func build(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	// Inside the tests module the workspace resolves both packages.
	cmd.Dir = "."
	cmd.Env = os.Environ()
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}
