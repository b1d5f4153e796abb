package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestProcWait makes three times as many threads spin as there are CPUs:
// for each one running, two wait. The wait must show, and be about twice
// the CPU time they got.
func TestProcWait(t *testing.T) {
	pid := os.Getpid()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/schedstat", pid)); err != nil {
		t.Skipf("no scheduler statistics on this kernel: %v", err)
	}
	// sample returns the process's wait for a CPU and its CPU time.
	sample := func() (wait, cpu time.Duration) {
		t.Helper()
		wait, err := procWait(pid)
		if err != nil {
			t.Fatal(err)
		}
		user, system, err := procCPU(pid)
		if err != nil {
			t.Fatal(err)
		}
		return wait, user + system
	}
	wait0, cpu0 := sample()

	spinners := 3 * runtime.NumCPU()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(spinners + 1))
	var wg sync.WaitGroup
	for range spinners {
		wg.Go(func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
			}
		})
	}
	wg.Wait()

	wait1, cpu1 := sample()
	waited, ran := wait1-wait0, cpu1-cpu0
	if ran < 50*time.Millisecond { // other tests may share the CPUs
		t.Errorf("CPU time grew by %v, want well above zero", ran)
	}
	// 2x in theory; the margin is for clock ticks and the test's own
	// other threads. Reading the running time instead gives 1x.
	if float64(waited) < 1.4*float64(ran) {
		t.Errorf("threads waited %v for a CPU while running %v, want about twice as long", waited, ran)
	}
}
