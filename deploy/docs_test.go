package deploy

import (
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

const operationsPath = "docs/operations.md"

var update = flag.Bool("update", false, "rewrite the generated parts of docs/operations.md")

const (
	variablesBegin = "<!-- variables:begin (generated from hammer --help: go test ./deploy -run TestOperationsDoc -update) -->"
	variablesEnd   = "<!-- variables:end -->"
	metricsBegin   = "<!-- metrics:begin -->"
	metricsEnd     = "<!-- metrics:end -->"
)

// TestOperationsDoc holds the variable table of docs/operations.md to the
// binary's own list (name, default, commands, meaning), and its metric table
// to the metrics the code registers, both ways.
func TestOperationsDoc(t *testing.T) {
	t.Parallel()
	c := hammer(t)
	doc := string(readFile(t, operationsPath))

	want := variablesTable(c)
	before, got, after, ok := between(doc, variablesBegin, variablesEnd)
	if !ok {
		t.Fatalf("%s: no %q … %q section", operationsPath, variablesBegin, variablesEnd)
	}
	if got != want {
		if *update {
			doc = before + want + after
			if err := os.WriteFile(filepath.Join(root, operationsPath), []byte(doc), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rewrote the variable table", operationsPath)
		} else {
			t.Errorf("%s: the variable table differs from hammer --help; run go test ./deploy -run TestOperationsDoc -update\n%s", operationsPath, lineDiff(got, want))
		}
	}

	_, metrics, _, ok := between(doc, metricsBegin, metricsEnd)
	if !ok {
		t.Fatalf("%s: no %q … %q section", operationsPath, metricsBegin, metricsEnd)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(hammer_[a-z0-9_]+)`").FindAllStringSubmatch(metrics, -1) {
		documented[m[1]] = true
	}
	registered := registeredMetrics(t)
	for name := range documented {
		if _, ok := registered[name]; !ok {
			t.Errorf("%s: metric %s is documented, but no code registers it", operationsPath, name)
		}
	}
	var missing []string
	for name, file := range registered {
		if !documented[name] {
			missing = append(missing, fmt.Sprintf("%s (%s)", name, file))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s: metric %s is registered, but the metrics table does not list it", operationsPath, m)
	}
}

// variablesTable is the markdown table of every variable, from --help.
func variablesTable(c *cli) string {
	var b strings.Builder
	b.WriteString("\n| Variable | Default | Read by | Meaning |\n| --- | --- | --- | --- |\n")
	for _, v := range c.vars {
		def := "(none)"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Name, def, strings.Join(v.Commands, ", "), strings.ReplaceAll(v.Description, "|", `\|`))
	}
	return b.String()
}

var metricName = regexp.MustCompile(`Name:\s*"(hammer_[a-z0-9_]+)"`)

// registeredMetrics finds the hammer_* metric names the services' code
// declares (prometheus *Opts literals), with the file of each.
func registeredMetrics(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range []string{"services", "platform", "cmd"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range metricName.FindAllSubmatch(src, -1) {
				rel, _ := filepath.Rel(root, path)
				out[string(m[1])] = filepath.ToSlash(rel)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("reading %s: %v", dir, err)
		}
	}
	return out
}

// between splits s around the text between two marker lines.
func between(s, begin, end string) (before, inside, after string, ok bool) {
	i := strings.Index(s, begin)
	j := strings.Index(s, end)
	if i < 0 || j < i {
		return "", "", "", false
	}
	i += len(begin)
	return s[:i], s[i:j], s[j:], true
}

// lineDiff lists the lines only one side has.
func lineDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for _, l := range g {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "  doc:  %s\n", l)
		}
	}
	for _, l := range w {
		if !slices.Contains(g, l) {
			fmt.Fprintf(&b, "  code: %s\n", l)
		}
	}
	return b.String()
}
