package podinit

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestArgv(t *testing.T) {
	got := Argv("/pods/p/resolv.conf", "/bin/kshaka-acceptor", []string{"kshaka-acceptor", "--listen=x"})
	want := []string{Arg0, "/pods/p/resolv.conf", "/bin/kshaka-acceptor", "kshaka-acceptor", "--listen=x"}
	if !slices.Equal(got, want) {
		t.Errorf("Argv = %q, want %q", got, want)
	}
}

// TestRefusesHostNamespace: started without a mount namespace of its own
// (as this test process is), the step refuses before mounting anything.
func TestRefusesHostNamespace(t *testing.T) {
	before, err := os.ReadFile(ResolvConf)
	if err != nil {
		t.Fatal(err)
	}
	err = run(os.DevNull, "/bin/true", []string{"true"})
	if err == nil || !strings.Contains(err.Error(), "not started in a mount namespace of its own") {
		t.Fatalf("run in the parent's mount namespace: %v, want a refusal", err)
	}
	if after, _ := os.ReadFile(ResolvConf); string(after) != string(before) {
		t.Fatalf("%s changed", ResolvConf)
	}
}
