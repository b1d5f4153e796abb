package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// summary is a latency distribution in milliseconds.
type summary struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// samples collects durations from many goroutines. Each goroutine keeps its
// own slice (no lock on the hot path) and hands it over once with add.
type samples struct {
	mu  sync.Mutex
	all []time.Duration
}

func (s *samples) add(d []time.Duration) {
	s.mu.Lock()
	s.all = append(s.all, d...)
	s.mu.Unlock()
}

func (s *samples) summary() summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	return summarize(s.all)
}

// summarize sorts d in place and returns its percentiles (nearest rank).
func summarize(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		i = max(0, min(i, len(d)-1))
		return ms(d[i])
	}
	return summary{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return round3(float64(d) / float64(time.Millisecond)) }

func round3(f float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', 3, 64), 64)
	return r
}

func (s summary) String() string {
	return fmt.Sprintf("n=%d p50=%.3fms p90=%.3fms p99=%.3fms max=%.3fms", s.N, s.P50, s.P90, s.P99, s.Max)
}

// clockTick is USER_HZ, the unit of /proc CPU times. It is 100 on every
// Linux platform Go supports, and reading it needs cgo (sysconf).
const clockTick = 100

// procCPU returns the CPU time a process has used so far, in user space
// and in the kernel.
func procCPU(pid int) (user, system time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading stat of pid %d: %w", pid, err)
	}
	// The command name (field 2) may contain spaces; fields after it are
	// counted from the closing parenthesis. utime and stime are fields 14, 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parsing stat of pid %d: no command field", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("parsing stat of pid %d: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("parsing stat of pid %d: bad utime/stime", pid)
	}
	return time.Duration(ut) * time.Second / clockTick, time.Duration(st) * time.Second / clockTick, nil
}

// procWait returns how long a process's threads have been ready to run
// but waiting for a CPU (the second field of each thread's schedstat).
// On a machine shared with the load tool, that wait is where tail latency
// comes from, so every run reports it.
func procWait(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("listing threads of pid %d: %w", pid, err)
	}
	var wait int64
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			return 0, fmt.Errorf("parsing schedstat of pid %d: %q", pid, b)
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing schedstat of pid %d: %w", pid, err)
		}
		wait += ns
	}
	return time.Duration(wait), nil
}

// procRSS returns a process's resident set size in KiB.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading status of pid %d: %w", pid, err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS of pid %d: %w", pid, err)
			}
			return kib, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// machineBusy returns the CPU time all cores have spent busy since boot
// (everything in /proc/stat's cpu line but idle and iowait).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("reading /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("parsing /proc/stat: unexpected %q", line)
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing /proc/stat: %w", err)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}

// cpuMeter measures, over one window, the CPU used by the servers (if
// their PIDs are known, summed), by the nats-server, by this load tool
// (with its shards), and by everything else on the machine. The last
// figure is what tells whether a run was taken on a quiet box.
type cpuMeter struct {
	pids   []int
	nats   int
	shards []int
	start  time.Time
	at     cpuReading
}

// cpuReading is what a cpuMeter reads at each end of its window.
type cpuReading struct {
	serverUser, serverSystem, serverWait time.Duration
	nats, self, busy                     time.Duration
}

// cpuWindow is the result of a cpuMeter, in cores (1.0 = one core busy).
type cpuWindow struct {
	Seconds     float64 `json:"seconds"`
	ServerCores float64 `json:"server_cores"`
	ServerCPUS  float64 `json:"server_cpu_s"`
	// The kernel's part of ServerCPUS: system calls, and the loopback
	// delivery a write does for the receiving socket.
	ServerSystemS float64 `json:"server_system_s"`
	// Time the server's threads were ready to run but waited for a CPU.
	ServerWaitS float64 `json:"server_wait_s"`
	NATSCores   float64 `json:"nats_cores,omitempty"`
	NATSCPUS    float64 `json:"nats_cpu_s,omitempty"`
	LoadCores   float64 `json:"load_tool_cores"`
	OtherCores  float64 `json:"other_cores"`
	MachineCPUs int     `json:"machine_cpus"`
}

// startCPU starts a window over cfg's servers and nats-server; shards
// are the tool's child processes, counted with the tool.
func startCPU(cfg *config, shards []int) *cpuMeter {
	m := &cpuMeter{pids: cfg.pids, nats: cfg.natsPID, shards: shards, start: time.Now()}
	m.at = m.read()
	return m
}

// read leaves zeros for what it cannot read: a meter is informative and
// never fails a run.
func (m *cpuMeter) read() cpuReading {
	var r cpuReading
	for _, pid := range m.pids {
		u, s, _ := procCPU(pid)
		w, _ := procWait(pid)
		r.serverUser, r.serverSystem, r.serverWait = r.serverUser+u, r.serverSystem+s, r.serverWait+w
	}
	if m.nats > 0 {
		u, s, _ := procCPU(m.nats)
		r.nats = u + s
	}
	for _, pid := range append([]int{os.Getpid()}, m.shards...) {
		u, s, _ := procCPU(pid)
		r.self += u + s
	}
	r.busy, _ = machineBusy()
	return r
}

func (m *cpuMeter) stop() cpuWindow {
	now := m.read()
	secs := time.Since(m.start).Seconds()
	w := cpuWindow{Seconds: round3(secs), MachineCPUs: runtime.NumCPU()}
	if secs <= 0 {
		return w
	}
	system := now.serverSystem - m.at.serverSystem
	ds := now.serverUser - m.at.serverUser + system
	dn := now.nats - m.at.nats
	dl, db := now.self-m.at.self, now.busy-m.at.busy
	w.ServerCPUS = round3(ds.Seconds())
	w.ServerSystemS = round3(system.Seconds())
	// A thread that ended in the window takes its wait with it.
	w.ServerWaitS = round3(max(0, now.serverWait-m.at.serverWait).Seconds())
	w.ServerCores = round3(ds.Seconds() / secs)
	w.NATSCPUS = round3(dn.Seconds())
	w.NATSCores = round3(dn.Seconds() / secs)
	w.LoadCores = round3(dl.Seconds() / secs)
	w.OtherCores = round3(max(0, (db-ds-dn-dl).Seconds()) / secs)
	return w
}

func (w cpuWindow) String() string {
	nats := ""
	if w.NATSCPUS > 0 {
		nats = fmt.Sprintf(", nats-server %.2f", w.NATSCores)
	}
	return fmt.Sprintf("cpu over %.1fs: server %.2f cores (%.1fs in the kernel, %.1fs waiting for a CPU)%s, load tool %.2f, other processes %.2f (of %d)",
		w.Seconds, w.ServerCores, w.ServerSystemS, w.ServerWaitS, nats, w.LoadCores, w.OtherCores, w.MachineCPUs)
}
