//go:build !unix

package main

// defaultMaxConns is 0 (unlimited) where there is no RLIMIT_NOFILE.
func defaultMaxConns() int { return 0 }
