package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processUsage is what one process (or the PostgreSQL process tree) used.
type processUsage struct {
	Name       string  `json:"name"`
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

// clockTicks is USER_HZ, 100 on every Linux loadgen runs on.
const clockTicks = 100

// usage reads hammer's own CPU time and peak RSS, and the sum over the
// PostgreSQL processes it started (their peak RSS is the largest single
// process's: shared buffers would be counted once per process otherwise).
func (d *devProcess) usage() []processUsage {
	pid := d.cmd.Process.Pid
	hammer := processUsage{Name: "hammer dev"}
	hammer.CPUSeconds, hammer.PeakRSSMiB = readProc(pid)
	pg := processUsage{Name: "postgres"}
	for _, p := range descendants(pid) {
		cpu, rss := readProc(p)
		pg.CPUSeconds += cpu
		pg.PeakRSSMiB = max(pg.PeakRSSMiB, rss)
	}
	return []processUsage{hammer, pg}
}

// diff reports CPU used between two readings and the later peak RSS.
func diff(before, after []processUsage) []processUsage {
	out := make([]processUsage, len(after))
	for i := range after {
		out[i] = after[i]
		if i < len(before) {
			out[i].CPUSeconds = round(after[i].CPUSeconds - before[i].CPUSeconds)
		}
		out[i].PeakRSSMiB = round(out[i].PeakRSSMiB)
	}
	return out
}

func readProc(pid int) (cpuSeconds, peakRSSMiB float64) {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) > 12 {
		utime, _ := strconv.ParseFloat(fields[11], 64)
		stime, _ := strconv.ParseFloat(fields[12], 64)
		cutime, _ := strconv.ParseFloat(fields[13], 64)
		cstime, _ := strconv.ParseFloat(fields[14], 64)
		cpuSeconds = (utime + stime + cutime + cstime) / clockTicks
	}
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
				peakRSSMiB = kb / 1024
			}
		}
	}
	return cpuSeconds, peakRSSMiB
}

// descendants lists every process below pid.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 {
			pp, _ := strconv.Atoi(fields[1])
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// selfUsage is loadgen's own CPU time and peak RSS.
func selfUsage() processUsage {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return processUsage{Name: "loadgen", CPUSeconds: cpu.Seconds(), PeakRSSMiB: float64(ru.Maxrss) / 1024}
}

// loadAverage is the 1-minute load average, 0 where /proc/loadavg is missing.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return f
}
