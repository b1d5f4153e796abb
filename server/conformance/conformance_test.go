package conformance

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// caseDeadline bounds one case: a case that fails by getting no answer
// fails at this deadline, and one that passes takes milliseconds.
const caseDeadline = 15 * time.Second

// TestConformance runs every case against every transport.
func TestConformance(t *testing.T) {
	t.Parallel()
	targets := startTargets(t)
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			for _, cs := range cases() {
				t.Run(cs.id, func(t *testing.T) {
					t.Parallel()
					if err := runCase(tg, cs.run, faultNone, caseDeadline); err != nil {
						t.Errorf("%s: %v", cs.desc, err)
					}
				})
			}
		})
	}
}

// TestConformanceCasesCanFail shows that no case passes whatever the
// server does: each one fails under at least one fault switch.
func TestConformanceCasesCanFail(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every case four more times")
	}
	t.Parallel()
	tg := startTargets(t)[0]
	all := cases()
	type result struct {
		id     string
		failed []string
	}
	results := make(chan result, len(all))
	for _, cs := range all {
		go func() {
			r := result{id: cs.id}
			for f := faultStatus; f <= faultPong; f++ {
				// A fault often shows as a missing answer: a shorter
				// deadline makes that quick. It can only make a case fail,
				// which is what is checked.
				if runCase(tg, cs.run, f, 3*time.Second) != nil {
					r.failed = append(r.failed, faultNames[f])
				}
			}
			results <- r
		}()
	}
	byFault := map[string]int{}
	var never []string
	for range all {
		r := <-results
		for _, f := range r.failed {
			byFault[f]++
		}
		if len(r.failed) == 0 {
			never = append(never, r.id)
		}
	}
	sort.Strings(never)
	var summary []string
	for f, n := range byFault {
		summary = append(summary, fmt.Sprintf("%s: %d", f, n))
	}
	sort.Strings(summary)
	t.Logf("%d cases; failed under each fault: %s", len(all), strings.Join(summary, ", "))
	if len(never) > 0 {
		t.Errorf("cases that pass under every fault: %v", never)
	}
}
