package version

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	saved := Version
	t.Cleanup(func() { Version = saved })
	Version = "v9.8.7"
	s := String("kshaka")
	if !strings.HasPrefix(s, "kshaka v9.8.7") || !strings.Contains(s, "go1.") {
		t.Errorf("String = %q, want it to start with the program and release and name the Go version", s)
	}
}
