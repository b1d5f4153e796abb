package main

import (
	"context"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestSpreadFlags checks -url lists, -pid lists and the combinations
// parseFlags refuses.
func TestSpreadFlags(t *testing.T) {
	t.Parallel()
	cfg, err := parseFlags([]string{"-mode", "relay", "-cross", "-url", "ws://127.0.0.1:1/ws, ws://127.0.0.1:2/ws", "-pid", "10,20"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.urls, []string{"ws://127.0.0.1:1/ws", "ws://127.0.0.1:2/ws"}) || !slices.Equal(cfg.pids, []int{10, 20}) || cfg.pid != 10 {
		t.Errorf("urls %q, pids %v, pid %d", cfg.urls, cfg.pids, cfg.pid)
	}
	for _, args := range [][]string{
		{"-mode", "relay", "-cross"},                                     // one instance
		{"-mode", "idle", "-url", "ws://127.0.0.1:1/ws,", "-users", "1"}, // empty item
		{"-mode", "idle", "-url", "ws://127.0.0.1:1/ws,ws://127.0.0.1:2/ws", "-pid", "10"},
		{"-mode", "idle", "-pid", "x"},
		{"-mode", "churn", "-procs", "2"},
		{"-mode", "idle", "-procs", "99"},
		{"-mode", "relay", "-shard"},
		{"-mode", "failover", "-url", "ws://127.0.0.1:1/ws,ws://127.0.0.1:2/ws"}, // no -kill-pid
		{"-mode", "failover", "-kill-pid", "10"},                                 // one instance
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%q: parsed, want a refusal", args)
		}
	}
	for _, tt := range []struct {
		first, users, n int
		want            []int
	}{{0, 10, 3, []int{4, 3, 3}}, {5, 4, 3, []int{1, 1, 2}}, {0, 2, 1, []int{2}}} {
		if got := spread(tt.first, tt.users, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("spread(%d, %d, %d) = %v, want %v", tt.first, tt.users, tt.n, got, tt.want)
		}
	}
	if e, c := pairInstances(4, 3, true); e != 1 || c != 2 {
		t.Errorf("cross pair 4 of 3 instances: callee %d caller %d, want 1 and 2", e, c)
	}
	if e, c := pairInstances(4, 3, false); e != 1 || c != 1 {
		t.Errorf("pair 4 of 3 instances: callee %d caller %d, want 1 and 1", e, c)
	}
}

// TestFailoverRefusesOtherProcesses checks that -kill-pid kills nothing
// but a p2pchat instance: here the test binary's own PID.
func TestFailoverRefusesOtherProcesses(t *testing.T) {
	t.Parallel()
	if err := checkVictim(os.Getpid()); err == nil {
		t.Error("the tool's own PID accepted")
	}
	if err := checkVictim(os.Getppid()); err == nil {
		t.Error("the parent process accepted")
	}
}

// TestSeveralInstances spreads idle users and relay pairs over three
// real servers on 127.0.0.1, with the idle users held by two shards
// (child processes), and checks that every instance got its share.
func TestSeveralInstances(t *testing.T) {
	t.Parallel()
	urls := []string{startServer(t, false), startServer(t, false), startServer(t, false)}
	pid := strconv.Itoa(os.Getpid())
	pids := strings.Join([]string{pid, pid, pid}, ",")
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"idle", []string{"-mode", "idle", "-users", "90", "-hold", "100ms"}},
		{"idle in shards", []string{"-mode", "idle", "-users", "91", "-procs", "2", "-hold", "100ms"}},
		// Cross-instance pairs need instances joined by NATS: see
		// nats-bench.sh; pairInstances is checked in TestSpreadFlags.
		{"relay in shards", []string{"-mode", "relay", "-pairs", "6", "-rate", "300", "-warmup", "100ms", "-duration", "300ms", "-idle", "30", "-procs", "2"}},
		{"relay same", []string{"-mode", "relay", "-pairs", "6", "-rate", "300", "-warmup", "100ms", "-duration", "300ms", "-idle", "30"}},
		{"churn", []string{"-mode", "churn", "-concurrency", "3", "-count", "30", "-duration", "20s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var log syncBuffer
			args := append([]string{"-url", strings.Join(urls, ","), "-pid", pids, "-max-time", "60s", "-prefix", "S" + strings.ReplaceAll(tt.name, " ", "") + "-"}, tt.args...)
			r, err := run(context.Background(), args, &log)
			if err != nil {
				t.Fatalf("run: %v\n%s", err, log.String())
			}
			if !r.OK {
				t.Fatalf("errors %d %v\n%s", r.Errors, r.ErrorKinds, log.String())
			}
			switch tt.name {
			case "idle", "idle in shards":
				if len(r.Instances) != 3 || r.Instances[0].Users+r.Instances[1].Users+r.Instances[2].Users != r.Users || r.Logins != int64(r.Users) {
					t.Errorf("instances %+v, logins %d; want 3 sharing %d users", r.Instances, r.Logins, r.Users)
				}
				if tt.name == "idle in shards" && (len(r.Shards) != 2 || r.Shards[0].Logins+r.Shards[1].Logins != 91) {
					t.Errorf("shards %+v, want 2 with 91 logins", r.Shards)
				}
			case "relay in shards", "relay same":
				if r.SentOffers == 0 || r.SentAnswers != r.SentOffers || r.Logins != 42 || len(r.Instances) != 3 {
					t.Errorf("sent %d offers, %d answers, %d logins, instances %+v", r.SentOffers, r.SentAnswers, r.Logins, r.Instances)
				}
			case "churn":
				if r.Logins != 30 {
					t.Errorf("logins %d, want 30", r.Logins)
				}
			}
		})
	}
}

// TestShardPlan: the shards share the users out and dial from source
// addresses of their own, after the parent's, with room for each one's
// connections.
func TestShardPlan(t *testing.T) {
	for _, tc := range []struct{ n, procs, src int }{{100000, 6, 6}, {7, 3, 0}, {40001, 2, 1}} {
		plan := shardPlan(tc.n, tc.procs, tc.src)
		users, next := 0, tc.src
		for k, sp := range plan {
			if sp.first != users || sp.srcFirst != next {
				t.Errorf("%+v: shard %d is %+v, want users from %d and source addresses from %d", tc, k, sp, users, next)
			}
			if sp.srcAddrs*portsPerSource < sp.users {
				t.Errorf("%+v: shard %d has %d source addresses for %d users", tc, k, sp.srcAddrs, sp.users)
			}
			users += sp.users
			next = sp.srcFirst + sp.srcAddrs
		}
		if users != tc.n || len(plan) != tc.procs {
			t.Errorf("%+v: %d shards hold %d users", tc, len(plan), users)
		}
	}
}
