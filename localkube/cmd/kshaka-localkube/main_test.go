package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kshaka-io/kshaka/localkube"
)

// TestUpStatusDown runs the program the way the Makefile does: up in the
// background, status, kubeconfig, down; then up again on the same directory
// (the cluster resumes) and down --purge. Nothing may be left running.
func TestUpStatusDown(t *testing.T) {
	var cfg localkube.Config
	cfg.EnsureDefaults()
	if missing := cfg.MissingBinaries(); len(missing) > 0 {
		t.Fatalf("the Kubernetes binaries are missing (%s); build them with `make kube-binaries`",
			strings.Join(missing, ", "))
	}
	exe := filepath.Join(t.TempDir(), "kshaka-localkube")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "state")
	addrs := "--pod-addresses=" + localkube.RandomPodAddresses()
	run := func(wantRC int, args ...string) string {
		t.Helper()
		cmd := exec.Command(exe, append(args, "--dir", dir)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		rc := 0
		if ee, ok := err.(*exec.ExitError); ok {
			rc = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if rc != wantRC {
			t.Fatalf("kshaka-localkube %v: exit code %d, want %d\n%s", args, rc, wantRC, out.String())
		}
		return out.String()
	}
	t.Cleanup(func() { _ = exec.Command(exe, "down", "--dir", dir).Run() })

	run(exitNotRunning, "status")
	out := run(exitOK, "up", addrs)
	if !strings.Contains(out, "localkube is ready") || !strings.Contains(out, "starting kube-apiserver") {
		t.Errorf("up printed:\n%s", out)
	}
	s, running, ready := localkube.ReadState(dir)
	if !running || !ready {
		t.Fatalf("after up: running %v, ready %v", running, ready)
	}
	if out := run(exitOK, "up", addrs); !strings.Contains(out, "already running") {
		t.Errorf("a second up printed:\n%s", out)
	}
	if out := run(exitOK, "status"); !strings.Contains(out, "ready: true") {
		t.Errorf("status printed:\n%s", out)
	}
	if out := strings.TrimSpace(run(exitOK, "kubeconfig")); out != s.Kubeconfig {
		t.Errorf("kubeconfig printed %q, want %q", out, s.Kubeconfig)
	}
	pids := pidsOf(t, dir)
	if out := run(exitOK, "down"); !strings.Contains(out, "nothing is left running") {
		t.Errorf("down printed:\n%s", out)
	}
	for _, pid := range pids {
		if _, err := os.Stat(filepath.Join("/proc", pid)); err == nil {
			if b, _ := os.ReadFile(filepath.Join("/proc", pid, "stat")); !bytes.Contains(b, []byte(") Z ")) {
				t.Errorf("process %s is still running after down: %s", pid, b)
			}
		}
	}
	run(exitNotRunning, "status")

	// A second start reuses the state (and the same ports).
	out = run(exitOK, "up", addrs)
	if s2, _, _ := localkube.ReadState(dir); s2.Server != s.Server {
		t.Errorf("the apiserver moved from %s to %s", s.Server, s2.Server)
	}
	if !strings.Contains(out, "localkube is ready") {
		t.Errorf("second up printed:\n%s", out)
	}
	run(exitOK, "down", "--purge")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("down --purge left %s: %v", dir, err)
	}
}

// pidsOf lists the supervisor and the processes it recorded under dir/run.
func pidsOf(t *testing.T, dir string) []string {
	t.Helper()
	pids := []string{strings.TrimSpace(strings.Fields(readFile(t, filepath.Join(dir, "localkube.pid")))[0])}
	files, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid"))
	if len(files) < 3 {
		t.Fatalf("want pid files for etcd, kube-apiserver and kube-controller-manager, have %v", files)
	}
	for _, f := range files {
		pids = append(pids, strings.Fields(readFile(t, f))[0])
	}
	return pids
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
