//go:build unix

package main

import "syscall"

// defaultMaxConns derives the global cap from RLIMIT_NOFILE (which the Go
// runtime has already raised to the hard limit).
func defaultMaxConns() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return max(64, int(rl.Cur)-fdReserve)
}
