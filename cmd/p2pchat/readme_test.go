package main

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEveryFlag keeps the README's flags table true to the code.
func TestREADMEListsEveryFlag(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var c config
	c.flagSet().VisitAll(func(f *flag.Flag) {
		row := "| `-" + f.Name + "` | `" + envName(f.Name) + "` |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README.md has no row for -%s (want a line starting %q)", f.Name, row)
		}
	})
}
