package deploy

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mattn/go-shellwords"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const dockerfilePath = "deploy/Dockerfile"

// dockerfile is what the tests need to know of deploy/Dockerfile.
type dockerfile struct {
	finalBase  string
	user       string
	entrypoint []string
	cmd        []string
	expose     []string
	// copied maps each file the final stage copies from a build stage to
	// the go build that made it.
	copied map[string]goBuild
	// The build of the ENTRYPOINT binary.
	buildPackage string
	stamps       []stamp
	cgoDisabled  bool
}

// goBuild is one `go build` of a RUN instruction.
type goBuild struct {
	stage, output, pkg string
	env                map[string]string
	ldflags            string
}

// stamp is one -X symbol=${ARG} of the ldflags.
type stamp struct{ symbol, arg string }

// parseDockerfile follows deploy/Dockerfile from its ENTRYPOINT back to the
// go build that made that file.
func parseDockerfile() (*dockerfile, error) {
	raw, err := os.ReadFile(filepath.Join(root, dockerfilePath))
	if err != nil {
		return nil, err
	}
	res, err := parser.Parse(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dockerfilePath, err)
	}
	df := &dockerfile{copied: map[string]goBuild{}}
	builds := map[string]goBuild{} // stage + ":" + output → build
	stage, stageIndex := "", -1
	for _, n := range res.AST.Children {
		args := nodeArgs(n)
		where := fmt.Sprintf("%s:%d: %s", dockerfilePath, n.StartLine, n.Original)
		switch strings.ToLower(n.Value) {
		case "from":
			stageIndex++
			stage = fmt.Sprint(stageIndex)
			if len(args) == 3 && strings.EqualFold(args[1], "as") {
				stage = args[2]
			}
			df.finalBase, df.user, df.entrypoint, df.cmd, df.expose = args[0], "", nil, nil, nil
			clear(df.copied)
		case "run":
			for _, b := range parseGoBuilds(strings.Join(args, " ")) {
				b.stage = stage
				builds[stage+":"+b.output] = b
			}
		case "copy":
			from := flagValue(n.Flags, "--from")
			if from == "" || len(args) != 2 {
				continue
			}
			b, ok := builds[from+":"+args[0]]
			if !ok {
				return nil, fmt.Errorf("%s: no go build in stage %q writes %s", where, from, args[0])
			}
			df.copied[args[1]] = b
		case "user":
			df.user = args[0]
		case "entrypoint", "cmd":
			if n.Attributes["json"] != true {
				return nil, fmt.Errorf("%s: want the JSON form: the image has no shell", where)
			}
			if strings.EqualFold(n.Value, "entrypoint") {
				df.entrypoint = args
			} else {
				df.cmd = args
			}
		case "expose":
			df.expose = append(df.expose, args...)
		}
	}
	if len(df.entrypoint) != 1 {
		return nil, fmt.Errorf("%s: ENTRYPOINT %q: want exactly the hammer binary, with the command in CMD", dockerfilePath, df.entrypoint)
	}
	b, ok := df.copied[df.entrypoint[0]]
	if !ok {
		return nil, fmt.Errorf("%s: ENTRYPOINT %s is not a file the final stage copies from a go build", dockerfilePath, df.entrypoint[0])
	}
	if b.pkg != "./cmd/hammer" {
		return nil, fmt.Errorf("%s: ENTRYPOINT %s is built from %s: want ./cmd/hammer", dockerfilePath, df.entrypoint[0], b.pkg)
	}
	df.buildPackage = b.pkg
	df.cgoDisabled = b.env["CGO_ENABLED"] == "0"
	fields := strings.Fields(b.ldflags)
	for i, f := range fields {
		if f != "-X" || i+1 == len(fields) {
			continue
		}
		symbol, value, _ := strings.Cut(fields[i+1], "=")
		arg := strings.Trim(strings.TrimPrefix(value, "$"), "{}")
		df.stamps = append(df.stamps, stamp{symbol: symbol, arg: arg})
	}
	return df, nil
}

// nodeArgs are the words after an instruction.
func nodeArgs(n *parser.Node) []string {
	var out []string
	for a := n.Next; a != nil; a = a.Next {
		out = append(out, a.Value)
	}
	return out
}

func flagValue(flags []string, name string) string {
	for _, f := range flags {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

// parseGoBuilds finds the `go build` commands of a RUN's shell text.
func parseGoBuilds(script string) []goBuild {
	var out []goBuild
	for _, part := range strings.Split(script, "&&") {
		words, err := shellwords.Parse(part)
		if err != nil {
			continue
		}
		b := goBuild{env: map[string]string{}}
		for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
			k, v, _ := strings.Cut(words[0], "=")
			b.env[k] = v
			words = words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			continue
		}
		for i := 2; i < len(words); i++ {
			switch w := words[i]; {
			case w == "-o" && i+1 < len(words):
				i++
				b.output = words[i]
			case w == "-ldflags" && i+1 < len(words):
				i++
				b.ldflags = words[i]
			case !strings.HasPrefix(w, "-"):
				b.pkg = w
			}
		}
		out = append(out, b)
	}
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	c := hammer(t)
	df, err := parseDockerfile()
	if err != nil {
		t.Fatal(err)
	}

	if !df.cgoDisabled {
		t.Errorf("%s: the go build of ./cmd/hammer does not set CGO_ENABLED=0: the final image has no C library", dockerfilePath)
	}
	if df.user == "" || df.user == "root" || df.user == "0" || strings.HasPrefix(df.user, "0:") || strings.HasPrefix(df.user, "root:") {
		t.Errorf("%s: final stage USER %q: want a non-root user", dockerfilePath, df.user)
	}
	if len(df.cmd) > 0 {
		c.checkArgs(t, dockerfilePath+": CMD", df.cmd)
	}
	for _, name := range []string{"HAMMER_HTTP_ADDR", "HAMMER_OPS_ADDR"} {
		port, err := c.port(name, nil)
		if err != nil {
			t.Error(err)
			continue
		}
		if !slices.Contains(df.expose, fmt.Sprint(port)) {
			t.Errorf("%s: EXPOSE %s: want %d too (the default of %s)", dockerfilePath, strings.Join(df.expose, " "), port, name)
		}
	}

	// The -X flags name real variables: the binary built with them says so.
	var symbols []string
	for _, s := range df.stamps {
		symbols = append(symbols, s.symbol)
	}
	for _, want := range []string{
		"github.com/hammer-webhooks/hammer/platform/version.Version",
		"github.com/hammer-webhooks/hammer/platform/version.Commit",
	} {
		if !slices.Contains(symbols, want) {
			t.Errorf("%s: the ldflags do not stamp %s (they set %q)", dockerfilePath, want, symbols)
		}
	}
	out, err := exec.Command(c.bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("hammer version: %v\n%s", err, out)
	}
	for _, want := range []string{stampVersion, stampCommit} {
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: a binary built with its -X flags prints %q for hammer version, without the stamped %q", dockerfilePath, strings.TrimSpace(string(out)), want)
		}
	}
}

// TestDockerignoreKeepsTheBuild checks that .dockerignore leaves in the build
// context every file go build needs: go.work and, in every module it uses,
// go.mod, go.sum, Go sources and embedded SQL.
func TestDockerignoreKeepsTheBuild(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	// The workspace's modules, as the Makefile lists them.
	list := exec.Command("go", "list", "-m", "-f", "{{.Dir}}")
	list.Dir = root
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	top, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	needed := []string{"go.work", "go.work.sum"}
	for _, moduleDir := range strings.Fields(string(out)) {
		dir, err := filepath.Rel(top, moduleDir)
		if err != nil {
			t.Fatal(err)
		}
		err = filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			name := d.Name()
			if d.IsDir() {
				if rel != dir && (strings.HasPrefix(name, ".") || name == "testdata") {
					return filepath.SkipDir
				}
				return nil
			}
			if name == "go.mod" || name == "go.sum" || strings.HasSuffix(name, ".sql") || strings.HasSuffix(name, ".json") ||
				(strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go")) {
				needed = append(needed, filepath.ToSlash(rel))
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walking module %s: %v", dir, err)
		}
	}
	for _, path := range needed {
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			continue // go.work.sum may not exist
		}
		excluded, err := pm.MatchesOrParentMatches(path)
		if err != nil {
			t.Fatalf(".dockerignore: %v", err)
		}
		if excluded {
			t.Errorf(".dockerignore: excludes %s, which the image's go build needs", path)
		}
	}
}
