package pgrun

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// account is the unprivileged user PostgreSQL runs as when hammer is root
// (PostgreSQL refuses to run as root).
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// lookupAccount finds the user named name and refuses root.
func lookupAccount(name string) (*account, error) {
	if name == "" {
		name = DefaultUser
	}
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("hammer runs as root, and PostgreSQL will not run as root; there is no user %q to run it as: create one (Debian's postgresql package creates 'postgres'), set HAMMER_DEV_PG_USER to an unprivileged user, or set HAMMER_DATABASE_URL", name)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %q has a non-numeric uid or gid (%s:%s)", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return nil, fmt.Errorf("HAMMER_DEV_PG_USER=%s is root, and PostgreSQL will not run as root: name an unprivileged user", name)
	}
	a := &account{name: name, uid: uint32(uid), gid: uint32(gid)}
	gids, _ := u.GroupIds()
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			a.groups = append(a.groups, uint32(n))
		}
	}
	if !slices.Contains(a.groups, a.gid) {
		a.groups = append(a.groups, a.gid)
	}
	return a, nil
}

// credential is what the child processes run with: nil runs them as hammer.
func (a *account) credential() *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.uid, Gid: a.gid}
}

func (a *account) String() string {
	if a == nil {
		return "hammer's own user"
	}
	return a.name
}

// traversable reports whether a may walk down to dir: every existing
// directory on the way must grant it search (x) permission by owner, group
// or other bits. ACLs are not considered.
func (a *account) traversable(dir string) bool {
	if a == nil {
		return true
	}
	for p := dir; ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err == nil {
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok || !info.IsDir() {
				return false
			}
			var bit fs.FileMode = 0o001
			switch {
			case st.Uid == a.uid:
				bit = 0o100
			case slices.Contains(a.groups, st.Gid):
				bit = 0o010
			}
			if info.Mode().Perm()&bit == 0 {
				return false
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false
		}
		if p == filepath.Dir(p) {
			return true
		}
	}
}

// fallbackDir is where the cluster lives when its user cannot reach
// hammer's data directory: under /tmp, which every user can traverse, named
// for the user and the data directory so each data directory keeps its own.
func fallbackDir(dataDir string, a *account) string {
	sum := sha256.Sum256([]byte(dataDir))
	return filepath.Join("/tmp", fmt.Sprintf("hammer-%d-%s", a.uid, hex.EncodeToString(sum[:])[:12]))
}

// locationFile, in hammer's data directory, names the fallback directory in
// use, so that a data directory removed to start afresh also forgets the
// cluster it had under /tmp.
const locationFile = "postgres.location"

// placement is where the cluster goes.
type placement struct {
	dir      string
	fallback bool // under /tmp because the user cannot reach the data directory
	stale    bool // a cluster found there belongs to a data directory since removed
}

// place chooses the cluster's directory.
func place(dataDir string, a *account) placement {
	primary := filepath.Join(dataDir, "postgres")
	if a == nil {
		return placement{dir: primary}
	}
	fb := fallbackDir(dataDir, a)
	recorded, _ := os.ReadFile(filepath.Join(dataDir, locationFile))
	if strings.TrimSpace(string(recorded)) == fb && hasCluster(fb) {
		return placement{dir: fb, fallback: true}
	}
	if a.traversable(dataDir) {
		return placement{dir: primary}
	}
	return placement{dir: fb, fallback: true, stale: hasCluster(fb)}
}

func hasCluster(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "data", "PG_VERSION"))
	return err == nil
}

// prepare creates dir (mode 0700) owned by the account, or checks that an
// existing one is a real directory that account owns.
func prepare(dir string, a *account) error {
	uid := uint32(os.Getuid())
	if a != nil {
		uid = a.uid
	}
	info, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.Mkdir(dir, 0o700); err != nil {
			return fmt.Errorf("cannot create PostgreSQL's directory %s (%v): set HAMMER_DATA_DIR to a directory you can write, or set HAMMER_DATABASE_URL", dir, unwrapPath(err))
		}
		if a != nil {
			if err := os.Lchown(dir, int(a.uid), int(a.gid)); err != nil {
				return fmt.Errorf("cannot give %s to user %s (%v): set HAMMER_DATA_DIR elsewhere, or set HAMMER_DATABASE_URL", dir, a.name, unwrapPath(err))
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot reach PostgreSQL's directory %s (%v): set HAMMER_DATA_DIR to a directory you can write, or set HAMMER_DATABASE_URL", dir, unwrapPath(err))
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok {
		return fmt.Errorf("%s is not a directory: remove it, or set HAMMER_DATA_DIR elsewhere", dir)
	}
	if st.Uid != uid {
		return fmt.Errorf("PostgreSQL's directory %s belongs to uid %d, not %s (uid %d): remove it to start afresh, or set HAMMER_DATA_DIR elsewhere", dir, st.Uid, a, uid)
	}
	if info.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("making %s private: %w", dir, err)
		}
	}
	return nil
}

// unwrapPath drops the path from a *fs.PathError, which the message names already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// socketDir is where the unix socket goes: the cluster's directory when the
// socket's path fits in sun_path (104 bytes on macOS, 108 on Linux), else a
// short private directory under /tmp.
func socketDir(dir string, a *account) (string, error) {
	if len(dir)+len("/.s.PGSQL.65535") < 100 {
		return dir, nil
	}
	sum := sha256.Sum256([]byte(dir))
	s := filepath.Join("/tmp", "hammer-s-"+hex.EncodeToString(sum[:])[:12])
	if err := prepare(s, a); err != nil {
		return "", err
	}
	return s, nil
}

// ownerFile, in a fallback directory, names the data directory it serves,
// so that a later start can tell when that data directory is gone.
const ownerFile = "data_dir"

// sweepFallbacks removes the fallback clusters of a's user whose data
// directory is gone or has moved on (test harnesses and people alike remove
// data directories, which would leave clusters under /tmp for ever). A
// directory whose lock is held is in use and kept; a postmaster left
// running in one is stopped first. Only directories hammer made (with an
// ownerFile) are touched; failures are logged and left for next time.
func sweepFallbacks(log *zap.Logger, a *account, keep string) {
	dirs, _ := filepath.Glob(filepath.Join("/tmp", fmt.Sprintf("hammer-%d-*", a.uid)))
	for _, dir := range dirs {
		if dir == keep {
			continue
		}
		owner, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		dataDir := strings.TrimSpace(string(owner))
		recorded, _ := os.ReadFile(filepath.Join(dataDir, locationFile))
		if strings.TrimSpace(string(recorded)) == dir {
			continue // still that data directory's cluster
		}
		lock, err := lockDir(dir)
		if err != nil {
			continue
		}
		err = clearLeftover(log, filepath.Join(dir, "data"))
		if err == nil {
			log.Info("removing a PostgreSQL cluster under /tmp whose data directory is gone", zap.String("dir", dir), zap.String("data_dir", dataDir))
			err = os.RemoveAll(dir)
		}
		_ = lock.Close()
		if err != nil {
			log.Warn("could not remove an abandoned PostgreSQL cluster", zap.String("dir", dir), zap.Error(err))
		}
	}
}
