package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hammer-webhooks/hammer/platform/testkit"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsNode is one nats-server process with JetStream, listening on a fixed
// loopback port so that a restart comes back where the clients look.
type natsNode struct {
	name string
	port int
	proc *proc
}

func (n *natsNode) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// startNATS starts count nats-server processes with JetStream under dir:
// one stand-alone server, or (count 3) a cluster whose routes are on
// loopback too. It returns once JetStream answers on every node.
func startNATS(t testing.TB, ps *procs, dir string, count int) []*natsNode {
	t.Helper()
	nodes := make([]*natsNode, count)
	clusterPorts := make([]int, count)
	for i := range nodes {
		nodes[i] = &natsNode{name: fmt.Sprintf("nats-%d", i+1), port: testkit.FreePort(t)}
		clusterPorts[i] = testkit.FreePort(t)
	}
	for i, n := range nodes {
		store := filepath.Join(dir, n.name)
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %q\nhost: \"127.0.0.1\"\nport: %d\n", n.name, n.port)
		fmt.Fprintf(&conf, "jetstream {\n  store_dir: %q\n}\n", store)
		if count > 1 {
			var routes []string
			for j, p := range clusterPorts {
				if j != i {
					routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf("nats-route://127.0.0.1:%d", p)))
				}
			}
			fmt.Fprintf(&conf, "cluster {\n  name: \"hammer-e2e\"\n  host: \"127.0.0.1\"\n  port: %d\n  routes: [%s]\n}\n",
				clusterPorts[i], strings.Join(routes, ", "))
		}
		path := filepath.Join(dir, n.name+".conf")
		if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
			t.Fatalf("writing %s: %v", path, err)
		}
		n.proc = ps.add(newProc(n.name, natsBin, dir, baseEnv(), "-c", path))
		if err := n.proc.start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		n.waitReady(t)
	}
	return nodes
}

// waitReady waits until JetStream answers on this node (in a cluster, once
// a meta leader is elected).
func (n *natsNode) waitReady(t testing.TB) {
	t.Helper()
	var last error
	ok := waitFor(60*time.Second, func() bool {
		nc, err := nats.Connect(n.url(), nats.Timeout(time.Second), nats.MaxReconnects(0))
		if err != nil {
			last = err
			return false
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			last = err
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, last = js.AccountInfo(ctx)
		return last == nil
	})
	if !ok {
		t.Fatalf("%s: JetStream did not become ready: %v\n%s", n.name, last, n.proc.tail(40))
	}
}

// baseEnv is the environment every child starts from: nothing of the
// test's own HAMMER_* settings leaks in.
func baseEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}
	if tz := os.Getenv("TZ"); tz != "" {
		env = append(env, "TZ="+tz)
	}
	return env
}
