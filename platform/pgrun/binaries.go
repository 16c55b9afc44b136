package pgrun

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DefaultSearchDirs are the places PostgreSQL's server binaries are
// installed by Debian's packages and by Homebrew, searched after PATH. Each
// pattern's matches are tried highest version first.
var DefaultSearchDirs = []string{
	"/usr/lib/postgresql/*/bin",
	"/opt/homebrew/opt/postgresql@*/bin",
	"/opt/homebrew/opt/postgresql/bin",
	"/usr/local/opt/postgresql@*/bin",
	"/usr/local/opt/postgresql/bin",
	"/usr/local/pgsql/bin",
}

// ErrNoBinaries is returned when no directory holds both initdb and postgres.
var ErrNoBinaries = errors.New("no PostgreSQL server binaries")

// FindBinaries returns the directory holding initdb and postgres. It looks
// in binDirs first (a PATH-style list of directories or glob patterns),
// then on PATH, then, when binDirs is empty, in DefaultSearchDirs.
func FindBinaries(binDirs string) (string, error) {
	var patterns []string
	if binDirs != "" {
		patterns = filepath.SplitList(binDirs)
	}
	var candidates []string
	candidates = append(candidates, expand(patterns)...)
	if p, err := exec.LookPath("initdb"); err == nil {
		// Debian links /usr/bin tools to a wrapper and some images link
		// /usr/local/bin/initdb into the versioned directory: follow the
		// link so postgres is looked up beside the real initdb.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	if binDirs == "" {
		candidates = append(candidates, expand(DefaultSearchDirs)...)
	}
	for _, dir := range candidates {
		if executable(filepath.Join(dir, "initdb")) && executable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	where := []string{"/usr/lib/postgresql/*/bin", "/opt/homebrew/opt/postgresql@*/bin", "/usr/local/opt/postgresql@*/bin"}
	if binDirs != "" {
		where = []string{binDirs}
	}
	return "", fmt.Errorf("%w (initdb and postgres) on PATH or in %s: install them (Debian: apt-get install postgresql; macOS: brew install postgresql@16) or set HAMMER_DATABASE_URL to a PostgreSQL of yours",
		ErrNoBinaries, strings.Join(where, ", "))
}

// expand resolves glob patterns, each pattern's matches highest version first.
func expand(patterns []string) []string {
	var out []string
	for _, p := range patterns {
		matches, err := filepath.Glob(p)
		if err != nil {
			continue
		}
		slices.SortStableFunc(matches, func(a, b string) int { return compareVersions(versionOf(b), versionOf(a)) })
		out = append(out, matches...)
	}
	return out
}

var digits = regexp.MustCompile(`\d+`)

// versionOf reads the numbers in a path such as /usr/lib/postgresql/16/bin
// or /opt/homebrew/opt/postgresql@14/bin.
func versionOf(path string) []int {
	var v []int
	for _, d := range digits.FindAllString(path, -1) {
		n, _ := strconv.Atoi(d)
		v = append(v, n)
	}
	return v
}

func compareVersions(a, b []int) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] - b[i]
		}
	}
	return len(a) - len(b)
}

func executable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.Mode().IsRegular() && info.Mode().Perm()&0o111 != 0
}
