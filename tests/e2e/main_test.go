package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	dir, err := os.MkdirTemp("", "hammer-e2e-bin-")
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
