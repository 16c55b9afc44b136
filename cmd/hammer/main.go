// Command hammer is the single binary of hammer, the webhook delivery
// system: it runs any one service, every worker service together, or, for
// a developer's machine, everything in one process (hammer dev). All
// configuration comes from HAMMER_* environment variables.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/hammer-webhooks/hammer/platform/config"
	"github.com/hammer-webhooks/hammer/platform/process"
	"github.com/hammer-webhooks/hammer/platform/version"
)

// command is one thing hammer does.
type command struct {
	name    string
	args    string
	summary string
	// configs are the configuration structs it reads, for --help.
	configs []any
	run     func(ctx context.Context, args []string) error
}

var commands = []command{
	{"dev", "", "every service in one process, with an embedded NATS and, unless HAMMER_DATABASE_URL is set, a private PostgreSQL (make run)",
		[]any{config.Dev{}}, runDev},
	{"api", "", "the REST API (make run-server)", []any{config.API{}}, runAPI},
	{"fanout", "", "turns accepted messages into one delivery event per subscription", []any{config.Fanout{}}, runFanout},
	{"deliverer", "", "makes the HTTP requests; run as many as you like", []any{config.Deliverer{}}, runDeliverer},
	{"recorder", "", "writes messages, deliveries and attempts to PostgreSQL", []any{config.Recorder{}}, runRecorder},
	{"worker", "", "fanout, deliverer and recorder in one process (make run-worker)",
		[]any{config.Worker{}}, runWorker},
	{"migrate", "up|down|version", "applies, reverts or reports the database schema (make db-migrate)", []any{config.Database{}}, runMigrate},
	{"version", "", "prints the version and commit", nil, runVersion},
}

// usageError is a mistake on the command line: hammer prints it with the
// usage and exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "-help" || name == "help" {
		usage(stdout)
		return 0
	}
	i := slices.IndexFunc(commands, func(c command) bool { return c.name == name })
	if i < 0 {
		fmt.Fprintf(stderr, "hammer: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	cmd := commands[i]
	// A terminal's Ctrl-C also ends a pipe reader (hammer dev | tee log):
	// without this, the next log line would kill hammer with SIGPIPE
	// halfway through stopping, leaving its PostgreSQL behind.
	signal.Ignore(syscall.SIGPIPE)
	if len(args) > 1 && (args[1] == "-h" || args[1] == "--help" || args[1] == "help") {
		usage(stdout)
		return 0
	}
	err := cmd.run(context.Background(), args[1:])
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "hammer %s: %s\n", name, process.OneLine(err))
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "hammer: webhook delivery over NATS JetStream and PostgreSQL (version %s, commit %s).\n\n", version.Version, version.Commit)
	fmt.Fprintln(w, "Usage: hammer <command>")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(tw, "  help\tthis text\n")
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Configuration (environment variables; [the commands that read each]):")
	for _, v := range variables() {
		def := ""
		if v.Default != "" {
			def = " (default " + v.Default + ")"
		}
		fmt.Fprintf(w, "  %s%s\n      %s [%s]\n", v.Name, def, v.Description, strings.Join(v.commands, " "))
	}
}

// variable is a configuration variable and the commands that read it.
type variable struct {
	config.Variable
	commands []string
}

// variables lists every variable once, in the order the commands declare
// them.
func variables() []variable {
	var out []variable
	index := map[string]int{}
	for _, c := range commands {
		for _, cfg := range c.configs {
			for _, v := range config.Variables(cfg) {
				i, ok := index[v.Name]
				if !ok {
					i = len(out)
					index[v.Name] = i
					out = append(out, variable{Variable: v})
				}
				if !slices.Contains(out[i].commands, c.name) {
					out[i].commands = append(out[i].commands, c.name)
				}
			}
		}
	}
	return out
}

func runVersion(_ context.Context, args []string) error {
	if len(args) > 0 {
		return usageError{"version takes no arguments"}
	}
	fmt.Printf("hammer %s (commit %s)\n", version.Version, version.Commit)
	return nil
}
