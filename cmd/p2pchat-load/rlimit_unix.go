//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseNoFile lifts RLIMIT_NOFILE to want descriptors, raising the hard
// limit too when allowed (root with CAP_SYS_RESOURCE). It fails only if
// fewer than need are available.
func raiseNoFile(need, want uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return fmt.Errorf("reading RLIMIT_NOFILE: %w", err)
	}
	if rl.Cur >= want {
		return nil
	}
	nl := rl
	nl.Cur, nl.Max = want, max(rl.Max, want)
	err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl)
	if err == nil {
		return nil
	}
	// Not allowed to raise the hard limit: take what it allows.
	nl.Cur, nl.Max = min(want, rl.Max), rl.Max
	if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &nl); err2 != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE to %d: %w", nl.Cur, err2)
	}
	if nl.Cur < need {
		return fmt.Errorf("RLIMIT_NOFILE is %d, below the %d needed: %w", nl.Cur, need, err)
	}
	return nil
}
