package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Several instances (-url a,b,c): user i of a population is on instance
// i mod n, so every instance holds its share whatever the count; relay
// pair i has its callee on instance i mod n and, with -cross, its caller
// on the next one.

// splitList splits a comma-separated list, refusing empty items.
func splitList(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
		if parts[i] == "" {
			return nil, errors.New("empty item in the list")
		}
	}
	return parts, nil
}

// parsePIDs parses -pid: empty, or a comma-separated list of PIDs.
func parsePIDs(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	items, err := splitList(s)
	if err != nil {
		return nil, fmt.Errorf("-pid: %w", err)
	}
	pids := make([]int, len(items))
	for i, it := range items {
		pid, err := strconv.Atoi(it)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("-pid: %q is not a PID", it)
		}
		pids[i] = pid
	}
	return pids, nil
}

// newDialers prepares one dialer per instance URL.
func newDialers(urls []string, srcFirst, srcAddrs int, timeout time.Duration, tutorial bool) ([]*dialer, error) {
	ds := make([]*dialer, len(urls))
	for i, u := range urls {
		d, err := newDialer(u, srcFirst, srcAddrs, timeout, tutorial)
		if err != nil {
			return nil, err
		}
		ds[i] = d
	}
	return ds, nil
}

// instanceOf is the instance of user index i among n instances.
func instanceOf(i, n int) int { return i % n }

// pairInstances returns the instances of pair i's callee and caller.
func pairInstances(i, n int, cross bool) (callee, caller int) {
	callee = i % n
	if cross {
		return callee, (i + 1) % n
	}
	return callee, callee
}

// spread counts the users first … first+users-1 on each of n instances.
func spread(first, users, n int) []int {
	counts := make([]int, n)
	for i := first; i < first+users; i++ {
		counts[instanceOf(i, n)]++
	}
	return counts
}

// instance is what a run measured on one server instance.
type instance struct {
	URL           string  `json:"url"`
	PID           int     `json:"pid,omitempty"`
	Users         int     `json:"users"`
	RSSBeforeKiB  int64   `json:"rss_before_kib,omitempty"`
	RSSAfterKiB   int64   `json:"rss_after_kib,omitempty"`
	RSSPerUserKiB float64 `json:"rss_per_user_kib,omitempty"`
}

// procFigures are the RSS of a helper process (the nats-server) before
// and after the users logged in.
type procFigures struct {
	PID          int   `json:"pid"`
	RSSBeforeKiB int64 `json:"rss_before_kib"`
	RSSAfterKiB  int64 `json:"rss_after_kib"`
}

// rssMeter reads every instance's RSS (and the nats-server's) before a
// population logs in, and again once it is in.
type rssMeter struct {
	cfg    *config
	before []int64
	nats   int64
}

func startRSS(cfg *config) *rssMeter {
	m := &rssMeter{cfg: cfg, before: make([]int64, len(cfg.pids))}
	for i, pid := range cfg.pids {
		m.before[i], _ = procRSS(pid)
	}
	if cfg.natsPID > 0 {
		m.nats, _ = procRSS(cfg.natsPID)
	}
	return m
}

// sumRSS is the summed RSS of pids in KiB; a process gone counts 0.
func sumRSS(pids []int) int64 {
	var sum int64
	for _, pid := range pids {
		rss, _ := procRSS(pid)
		sum += rss
	}
	return sum
}

// logInstances prints the per-instance and nats-server RSS figures that
// rssMeter.stop put into res.
func logInstances(w io.Writer, res *result) {
	for _, in := range res.Instances {
		fmt.Fprintf(w, "  %s (pid %d): %d idle users, RSS %d -> %d KiB, %.2f KiB per user\n", in.URL, in.PID, in.Users, in.RSSBeforeKiB, in.RSSAfterKiB, in.RSSPerUserKiB)
	}
	if res.NATS != nil {
		fmt.Fprintf(w, "nats-server RSS %d -> %d KiB\n", res.NATS.RSSBeforeKiB, res.NATS.RSSAfterKiB)
	}
}

// stop records the instances' figures in res for the given users per
// instance. It returns the summed RSS before and after.
func (m *rssMeter) stop(res *result, users []int) (before, after int64) {
	if len(m.cfg.urls) > 1 || m.cfg.pid == 0 {
		res.Instances = make([]instance, len(m.cfg.urls))
		for i, u := range m.cfg.urls {
			res.Instances[i] = instance{URL: u, Users: users[i]}
		}
	}
	for i, pid := range m.cfg.pids {
		rss, _ := procRSS(pid)
		before, after = before+m.before[i], after+rss
		if res.Instances != nil {
			in := &res.Instances[i]
			in.PID, in.RSSBeforeKiB, in.RSSAfterKiB = pid, m.before[i], rss
			if in.Users > 0 {
				in.RSSPerUserKiB = round3(float64(rss-m.before[i]) / float64(in.Users))
			}
		}
	}
	if m.cfg.natsPID > 0 {
		rss, _ := procRSS(m.cfg.natsPID)
		res.NATS = &procFigures{PID: m.cfg.natsPID, RSSBeforeKiB: m.nats, RSSAfterKiB: rss}
	}
	return before, after
}
