// Command p2pchat-load is p2pchat's load generator. It speaks the same
// WebSocket protocol as any client, only to a loopback address, and every
// run is bounded in count and time and stops by itself.
//
// Modes:
//
//	idle   N users connect, log in and stay for -hold; prints connect and
//	       login latency and, given the server's -pid, its RSS per user.
//	relay  -pairs caller/callee pairs; callers send offers (~1.2 KB) and
//	       candidates (~200 B) alternately at -rate per second in all, and
//	       callees answer every offer. Each payload carries a sequence
//	       number and its send time, so the receiver measures one-way
//	       latency, loss and reordering. -idle adds idle users around them,
//	       -churn workers logging in and out while they relay;
//	       -stalled adds users that never read, and flooders that send at
//	       them until the server has cut each one off (-rss-limit bounds
//	       the server's RSS meanwhile).
//	churn  -concurrency workers connect, log in and disconnect in a loop
//	       for -duration (or -count logins); prints logins per second.
//	failover
//	       -users users log in on the first -url's instance, the tool
//	       kills that instance (-kill-pid, SIGKILL) and logs the same
//	       names in on the other instances until each is free again;
//	       prints the time from the kill to a name being free.
//
// -url takes a comma-separated list of instances (joined by NATS): users
// are spread over them round-robin, and with -cross a relay pair's caller
// and callee are on different instances. -procs N holds the idle users in
// N child processes of the tool, since one process may open only so many
// files; -pid then lists one PID per -url, and -nats-pid adds the
// nats-server's RSS and CPU.
//
// -tutorial expects no more than the tutorial's Node.js server gives (any
// greeting; relayed answers and candidates without the sender's name), so
// the same runs measure that server (docs/reference) on the same machine.
//
// With -pid, CPU time of the server is measured over the run; every mode
// also reports the CPU used by other processes on the machine, because a
// figure taken on a busy machine is not a figure.
//
// Every unexpected message, timeout, failed login, lost relay or dropped
// connection is counted (the first few of each kind are printed to
// stderr). The last line of output is one JSON object with all figures;
// the exit status is 1 when any error was counted.
//
// Client sockets are spread over the source addresses 127.0.0.2 …
// 127.0.0.(n+1) (-src-addrs), since one source address has only ~28k
// ephemeral ports towards one server address, and RLIMIT_NOFILE is raised
// to fit the connections.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

// config is the parsed command line.
type config struct {
	mode        string
	urls        []string
	pids        []int // one per URL, or none
	pid         int   // the first of pids, or 0
	natsPID     int
	cross       bool
	procs       int
	shard       bool // a child holding idle users for a parent's -procs
	first       int  // index of the first idle user (shards)
	killPID     int
	probes      int
	probeEvery  time.Duration
	users       int
	pairs       int
	rate        float64
	idle        int
	churn       int
	churnRate   float64
	stalled     int
	rssLimit    int64
	count       int
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	drain       time.Duration
	hold        time.Duration
	timeout     time.Duration
	maxTime     time.Duration
	srcAddrs    int
	srcFirst    int // source addresses from 127.0.0.(2+srcFirst): shards use disjoint ones
	presence    bool
	tutorial    bool
	offerSize   int
	candSize    int
	prefix      string
	log         io.Writer
}

// portsPerSource is how many connections one source address is given:
// below the ~28k ephemeral ports Linux has by default, with room for
// sockets in TIME_WAIT.
const portsPerSource = 20000

func parseFlags(args []string, log io.Writer) (*config, error) {
	cfg := &config{log: log}
	fs := flag.NewFlagSet("p2pchat-load", flag.ContinueOnError)
	fs.SetOutput(log)
	fs.StringVar(&cfg.mode, "mode", "", "idle, relay, churn or failover (required)")
	urls := fs.String("url", "ws://127.0.0.1:8080/ws", "server WebSocket URL, or a comma-separated list of instances to spread users over round-robin (loopback only)")
	pids := fs.String("pid", "", "server PID, or a comma-separated list of one per -url, to report RSS and CPU time")
	fs.IntVar(&cfg.natsPID, "nats-pid", 0, "nats-server PID, to report its RSS and CPU time")
	fs.BoolVar(&cfg.cross, "cross", false, "relay: caller and callee of each pair on different instances (needs 2 or more -url)")
	fs.IntVar(&cfg.procs, "procs", 0, "idle, relay: hold the idle users in this many child processes of the tool (one process may open only RLIMIT_NOFILE files); 0 or 1: in this one")
	fs.BoolVar(&cfg.shard, "shard", false, "internal: run as a child of -procs (idle mode; holds its users until stdin closes)")
	fs.IntVar(&cfg.first, "first", 0, "internal: index of the first idle user, for -shard")
	fs.IntVar(&cfg.killPID, "kill-pid", 0, "failover: PID of the first -url's p2pchat instance, killed with SIGKILL once its users are in")
	fs.IntVar(&cfg.probes, "probes", 100, "failover: how many of the killed instance's names to try on the other instances")
	fs.DurationVar(&cfg.probeEvery, "probe-interval", 50*time.Millisecond, "failover: how often each probe tries its name again")
	fs.IntVar(&cfg.users, "users", 1000, "idle: users to log in")
	fs.IntVar(&cfg.pairs, "pairs", 100, "relay: caller/callee pairs")
	fs.Float64Var(&cfg.rate, "rate", 10000, "relay: offers+candidates per second, all callers together (callees answer each offer, so relayed messages are 1.5x this)")
	fs.IntVar(&cfg.idle, "idle", 0, "relay: idle logged-in users to hold around the pairs")
	fs.IntVar(&cfg.churn, "churn", 0, "relay: workers that connect, log in and disconnect in a loop while the pairs relay, so that logins happen during the measurement")
	fs.Float64Var(&cfg.churnRate, "churn-rate", 0, "relay: logins per second of the -churn workers in all (0: as fast as they go)")
	fs.IntVar(&cfg.stalled, "stalled", 0, "relay: users that log in and never read again; flooders send 32 KiB offers at them until the server has cut every one off")
	fs.Int64Var(&cfg.rssLimit, "rss-limit", 0, "relay with -pid: count an error if the server's RSS ever exceeds this many KiB (0: no limit)")
	fs.IntVar(&cfg.count, "count", 0, "churn: stop after this many logins (0: only -duration bounds the run)")
	fs.IntVar(&cfg.concurrency, "concurrency", 50, "connections opened in parallel (churn: workers)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "relay: measured sending time after the warm-up; churn: run time; failover: longest wait for the names to be free")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "relay: sending time before measuring starts")
	fs.DurationVar(&cfg.drain, "drain", 5*time.Second, "relay: how long to wait for messages still in flight; what has not arrived then is lost")
	fs.DurationVar(&cfg.hold, "hold", 3*time.Second, "idle: how long to hold the users before measuring RSS and leaving")
	fs.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "limit for each connect and each login")
	fs.DurationVar(&cfg.maxTime, "max-time", 5*time.Minute, "hard limit for the whole run")
	fs.IntVar(&cfg.srcFirst, "src-first", 0, "skip this many source addresses (the tool's shards each take their own)")
	fs.IntVar(&cfg.srcAddrs, "src-addrs", -1, "source addresses 127.0.0.2 … to spread client sockets over (-1: one per 20,000 connections; 0: let the kernel pick)")
	fs.BoolVar(&cfg.presence, "presence", false, "log in with presence:true (presence updates are then expected, not errors)")
	fs.BoolVar(&cfg.tutorial, "tutorial", false, "expect only what the tutorial's server sends: any greeting, answers and candidates without the sender's name")
	fs.IntVar(&cfg.offerSize, "offer-size", 1200, "relay: bytes of an offer or answer frame")
	fs.IntVar(&cfg.candSize, "candidate-size", 200, "relay: bytes of a candidate frame")
	fs.StringVar(&cfg.prefix, "prefix", "", "prefix of user names (default: L<pid>- so parallel runs do not collide)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if cfg.prefix == "" {
		cfg.prefix = "L" + strconv.Itoa(os.Getpid()%100000) + "-"
	}
	var err error
	if cfg.urls, err = splitList(*urls); err != nil {
		return nil, fmt.Errorf("-url: %w", err)
	}
	if cfg.pids, err = parsePIDs(*pids); err != nil {
		return nil, err
	}
	if len(cfg.pids) > 0 {
		cfg.pid = cfg.pids[0]
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.srcAddrs < 0 {
		cfg.srcAddrs = min(250, cfg.conns()/portsPerSource+1)
	}
	return cfg, nil
}

// check refuses flag combinations that make no run.
func (cfg *config) check() error {
	switch {
	case cfg.mode != "idle" && cfg.mode != "relay" && cfg.mode != "churn" && cfg.mode != "failover":
		return fmt.Errorf("-mode must be idle, relay, churn or failover, not %q", cfg.mode)
	case cfg.concurrency < 1 || cfg.timeout <= 0 || cfg.maxTime <= 0:
		return errors.New("-concurrency, -timeout and -max-time must be positive")
	case cfg.mode == "churn" && cfg.duration <= 0 && cfg.count <= 0:
		return errors.New("churn needs -duration or -count")
	case len(cfg.pids) > 0 && len(cfg.pids) != len(cfg.urls):
		return fmt.Errorf("-pid lists %d PIDs for %d -url instances", len(cfg.pids), len(cfg.urls))
	case cfg.cross && len(cfg.urls) < 2:
		return errors.New("-cross needs 2 or more -url instances")
	case cfg.procs < 0 || cfg.procs > maxProcs:
		return fmt.Errorf("-procs must be in 0..%d", maxProcs)
	case cfg.procs > 1 && cfg.mode != "idle" && cfg.mode != "relay":
		return errors.New("-procs holds idle users: idle and relay modes only")
	case cfg.shard && (cfg.mode != "idle" || cfg.procs > 1):
		return errors.New("-shard runs idle mode, without -procs")
	case cfg.churn < 0 || cfg.churn > 0 && cfg.mode != "relay":
		return errors.New("-churn is for relay mode, and not negative")
	case cfg.first < 0:
		return errors.New("-first must not be negative")
	case cfg.mode == "failover" && (len(cfg.urls) < 2 || cfg.killPID <= 0 || cfg.users < 1 || cfg.probes < 1 || cfg.probeEvery <= 0 || cfg.duration <= 0):
		return errors.New("failover needs 2 or more -url, -kill-pid, and positive -users, -probes, -probe-interval and -duration")
	}
	return nil
}

// conns is how many connections this process opens at most.
func (cfg *config) conns() int {
	idle := cfg.users
	if cfg.mode == "relay" {
		idle = cfg.idle
	}
	if cfg.procs > 1 {
		idle = 0 // held by the children
	}
	switch cfg.mode {
	case "relay":
		n := idle + 2*cfg.pairs + cfg.stalled + flooders
		// Churn sockets close at once; their TIME_WAIT ports are reused
		// on loopback, so they need files, not source addresses.
		return n + 2*cfg.churn
	case "churn":
		// TIME_WAIT sockets hold ports too; the kernel reuses them on
		// loopback, but spreading costs nothing.
		return portsPerSource
	case "failover":
		return cfg.users + cfg.probes
	}
	return idle
}

// result holds every figure of a run; it is printed as the last line.
type result struct {
	Mode           string           `json:"mode"`
	OK             bool             `json:"ok"`
	Errors         int64            `json:"errors"`
	ErrorKinds     map[string]int64 `json:"error_kinds"`
	Presence       bool             `json:"presence"`
	Users          int              `json:"users,omitempty"`
	Pairs          int              `json:"pairs,omitempty"`
	IdleUsers      int              `json:"idle_users,omitempty"`
	Stalled        int              `json:"stalled,omitempty"`
	StalledCutOff  int64            `json:"stalled_cut_off,omitempty"`
	FloodOffers    int64            `json:"flood_offers,omitempty"`
	Concurrency    int              `json:"concurrency"`
	RateTarget     float64          `json:"rate_target,omitempty"`
	Logins         int64            `json:"logins"`
	LoginsPerSec   float64          `json:"logins_per_s,omitempty"`
	ChurnLogins    int64            `json:"churn_logins,omitempty"`
	ChurnPerSec    float64          `json:"churn_logins_per_s,omitempty"`
	ChurnLogin     *summary         `json:"churn_login,omitempty"`
	Connect        *summary         `json:"connect,omitempty"`
	Login          *summary         `json:"login,omitempty"`
	SentOffers     int64            `json:"sent_offers,omitempty"`
	SentCandidates int64            `json:"sent_candidates,omitempty"`
	SentAnswers    int64            `json:"sent_answers,omitempty"`
	Received       int64            `json:"relayed_in_window,omitempty"`
	RelayedPerSec  float64          `json:"relayed_per_s,omitempty"`
	OfferedPerSec  float64          `json:"offers_candidates_per_s,omitempty"`
	Latency        *summary         `json:"latency,omitempty"`
	SenderLagMaxMs float64          `json:"sender_lag_max_ms,omitempty"`
	PresenceMsgs   int64            `json:"presence_msgs,omitempty"`
	FreeAfter      *summary         `json:"free_after_kill,omitempty"`
	Server         *serverFigures   `json:"server,omitempty"`
	Instances      []instance       `json:"instances,omitempty"`
	NATS           *procFigures     `json:"nats,omitempty"`
	Shards         []shardFigures   `json:"shards,omitempty"`
	CPU            cpuWindow        `json:"cpu"`
	ElapsedS       float64          `json:"elapsed_s"`
}

// serverFigures are measured on the server process given by -pid.
type serverFigures struct {
	PID           int     `json:"pid"`
	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib"`
	RSSPeakKiB    int64   `json:"rss_peak_kib,omitempty"`
	RSSPerUserKiB float64 `json:"rss_per_user_kib,omitempty"`
	CPUPerMsgUs   float64 `json:"cpu_us_per_msg,omitempty"`
	// The kernel's part of CPUPerMsgUs.
	SystemPerMsgUs float64 `json:"system_us_per_msg,omitempty"`
	CPUPerLoginUs  float64 `json:"cpu_us_per_login,omitempty"`
}

// run executes one load run. The figures are returned even with an error.
func run(ctx context.Context, args []string, log io.Writer) (*result, error) {
	cfg, err := parseFlags(args, log)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.maxTime)
	defer cancel()
	conns := cfg.conns()
	if cfg.mode == "churn" {
		conns = 2 * cfg.concurrency
	}
	if err := raiseNoFile(uint64(conns)+64, uint64(conns)+1024); err != nil {
		return nil, err
	}
	ds, err := newDialers(cfg.urls, cfg.srcFirst, cfg.srcAddrs, cfg.timeout, cfg.tutorial)
	if err != nil {
		return nil, err
	}
	errs := newCounters()
	errs.output = log
	res := &result{Mode: cfg.mode, Presence: cfg.presence, Concurrency: cfg.concurrency}
	start := time.Now()
	switch cfg.mode {
	case "idle":
		res.Users = cfg.users
		err = runIdle(ctx, cfg, ds, errs, res)
	case "relay":
		res.Pairs, res.IdleUsers, res.Stalled, res.RateTarget = cfg.pairs, cfg.idle, cfg.stalled, cfg.rate
		err = runRelay(ctx, cfg, ds, errs, res)
	case "churn":
		err = runChurn(ctx, cfg, ds, errs, res)
	case "failover":
		res.Users = cfg.users
		err = runFailover(ctx, cfg, ds, errs, res)
	}
	res.ElapsedS = round3(time.Since(start).Seconds())
	if ctx.Err() != nil && err == nil {
		err = fmt.Errorf("run stopped: %w", ctx.Err())
	}
	res.ErrorKinds, res.Errors = errs.snapshot()
	res.OK = res.Errors == 0 && err == nil
	return res, err
}

// gcPercent is the load tool's GOGC unless the environment sets one. With
// 19,100 idle users its live heap is ~240 MB and 19,100 goroutines, and a
// collection of that took 170-330 ms of marking on two cores shared with
// the server: every message in flight then counted as late (p99 36-108
// ms, against 1.6-3.2 ms with GOGC=off). At 400 the heap may grow to five
// times what is live before a collection, so idle users' memory is not
// collected again in a run; a run's own garbage is small and short-lived.
const gcPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "p2pchat-load:", err)
	}
	if res == nil {
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "errors: %d %v\n", res.Errors, res.ErrorKinds)
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	if !res.OK {
		os.Exit(1)
	}
}
