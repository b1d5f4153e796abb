package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them. Run
// as a shard of a -procs test (shardEnv set), the test binary is the tool.
func TestMain(m *testing.M) {
	if os.Getenv(shardEnv) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}
