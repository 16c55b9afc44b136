package pgrun

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidFile is what postmaster.pid says: PostgreSQL writes it when it starts
// and removes it when it stops, so one left behind names a postmaster that
// is still running or one that was killed.
type pidFile struct {
	pid  int
	port int
}

// readPidFile reads dataDir/postmaster.pid; ok is false when there is none.
func readPidFile(dataDir string) (pf pidFile, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if errors.Is(err, os.ErrNotExist) {
		return pidFile{}, false, nil
	}
	if err != nil {
		return pidFile{}, false, fmt.Errorf("reading postmaster.pid: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	pf.pid, _ = strconv.Atoi(strings.TrimSpace(lines[0]))
	if len(lines) > 3 {
		pf.port, _ = strconv.Atoi(strings.TrimSpace(lines[3]))
	}
	return pf, true, nil
}

// alive reports whether pid is a running process (a zombie is not).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if runtime.GOOS == "linux" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name, which may
		// itself hold spaces and parentheses.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X') {
			return false
		}
	}
	return true
}

// servesDataDir reports whether the live process pid is a postmaster of
// dataDir, so that a pid reused by another program after a reboot is never
// signalled. On Linux the postmaster's working directory is its data
// directory; elsewhere its command line names it.
func servesDataDir(pid int, dataDir string) bool {
	want, err := filepath.EvalSymlinks(dataDir)
	if err != nil {
		want = dataDir
	}
	if runtime.GOOS == "linux" {
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
			return cwd == want || cwd == dataDir
		}
	}
	out, err := exec.Command("ps", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return false
	}
	cmd := string(out)
	return strings.Contains(cmd, "postgres") && (strings.Contains(cmd, want) || strings.Contains(cmd, dataDir))
}

// shutdown modes, in the order Stop escalates through them. PostgreSQL
// reads SIGTERM as smart (wait for clients to leave), SIGINT as fast (end
// sessions, checkpoint) and SIGQUIT as immediate (crash-like; recovery
// runs at the next start).
var shutdownModes = []struct {
	name   string
	signal syscall.Signal
}{
	{"smart", syscall.SIGTERM},
	{"fast", syscall.SIGINT},
	{"immediate", syscall.SIGQUIT},
}

// groupAlive reports whether a live process (not a zombie) is left in
// process group pgid. A killed hammer's postmaster is reparented to init,
// and in a container init may leave its exited children as zombies.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if runtime.GOOS != "linux" {
		return true
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// After "(comm)": state, ppid, pgrp.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			return true
		}
	}
	return false
}

// waitGone polls until gone reports true or timeout passes.
func waitGone(gone func() bool, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if gone() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
