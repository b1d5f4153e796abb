package e2e

import (
	"os"
	"testing"
)

// TestMain removes the server binary the NAT lab builds: 14 MB left in the
// temporary directory by every run would add up on a developer's machine.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}
