package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binDir holds kshaka and kshaka-acceptor side by side, as `kshaka local`
// expects them, built once by TestMain.
var binDir string

// waitLimit bounds every wait on a condition; it is a hang guard, not a
// timing assertion.
const waitLimit = 90 * time.Second

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "kshaka-cli-test-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(dir)
	binDir = dir
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "the go command is needed to build the binaries under test:", err)
		os.Exit(1)
	}
	for _, pkg := range []string{"kshaka", "kshaka-acceptor"} {
		out, err := exec.Command(goBin, "build", "-o", filepath.Join(dir, pkg),
			"github.com/kshaka-io/kshaka/cmd/"+pkg).CombinedOutput()
		if err != nil {
			return 1, fmt.Errorf("building %s: %v\n%s", pkg, err, out)
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			return 1, err
		}
	}
	return code, nil
}

// syncBuffer collects a child's output while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// localProc is a running `kshaka local`.
type localProc struct {
	cmd    *exec.Cmd
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{}
	err    error
}

func startLocal(t *testing.T, args ...string) *localProc {
	t.Helper()
	lp := &localProc{done: make(chan struct{})}
	lp.cmd = exec.Command(filepath.Join(binDir, "kshaka"), append([]string{"local"}, args...)...)
	lp.cmd.Stdout, lp.cmd.Stderr = &lp.stdout, &lp.stderr
	if err := lp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		lp.err = lp.cmd.Wait()
		close(lp.done)
	}()
	t.Cleanup(func() {
		select {
		case <-lp.done:
			return
		default:
		}
		_ = lp.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-lp.done:
		case <-time.After(waitLimit):
			_ = lp.cmd.Process.Kill()
			<-lp.done
		}
	})
	return lp
}

func (lp *localProc) output() string {
	return "stdout:\n" + lp.stdout.String() + "\nstderr:\n" + lp.stderr.String()
}

// waitOutput waits until the combined output matches re.
func (lp *localProc) waitOutput(t *testing.T, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if m := rx.FindStringSubmatch(lp.stdout.String() + lp.stderr.String()); m != nil {
			return m
		}
		select {
		case <-lp.done:
			if m := rx.FindStringSubmatch(lp.stdout.String() + lp.stderr.String()); m != nil {
				return m
			}
			t.Fatalf("kshaka local exited (%v) before printing %q:\n%s", lp.err, re, lp.output())
		case <-tick.C:
			if time.Now().After(deadline) {
				t.Fatalf("kshaka local did not print %q:\n%s", re, lp.output())
			}
		}
	}
}

// wait waits for the process to exit and returns its exit code.
func (lp *localProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-lp.done:
	case <-time.After(waitLimit):
		t.Fatalf("kshaka local did not exit:\n%s", lp.output())
	}
	var ee *exec.ExitError
	switch {
	case lp.err == nil:
		return 0
	case errors.As(lp.err, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("kshaka local: %v", lp.err)
	return -1
}

func (lp *localProc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := lp.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if code := lp.wait(t); code != 0 {
		t.Fatalf("kshaka local exited with %d after %v:\n%s", code, sig, lp.output())
	}
}

// pid returns the pid kshaka local printed for an acceptor.
func (lp *localProc) pid(t *testing.T, id string) int {
	t.Helper()
	m := lp.waitOutput(t, `(?m)^  `+id+`  \S+  pid (\d+)`)
	pid, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// printedEnv returns the variables of the `export K=V` lines kshaka local
// printed once ready, as a user would copy them.
func (lp *localProc) printedEnv(t *testing.T) []string {
	t.Helper()
	lp.waitOutput(t, `ready\. Connect with`)
	out := lp.stdout.String()
	out = out[strings.LastIndex(out, "ready. Connect with"):]
	var env []string
	for _, m := range regexp.MustCompile(`(?m)^  export (\S+=\S+)`).FindAllStringSubmatch(out, -1) {
		env = append(env, m[1])
	}
	return env
}

// kshaka runs the CLI and returns its exit code, stdout and stderr.
func kshaka(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "kshaka"), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("kshaka %v: %v", args, err)
	return -1, "", ""
}

// expect runs the CLI and checks its exit code and that stdout contains want.
func expect(t *testing.T, env []string, code int, want string, args ...string) string {
	t.Helper()
	got, stdout, stderr := kshaka(t, env, args...)
	if got != code || !strings.Contains(stdout, want) {
		t.Fatalf("kshaka %s: exit %d, want %d; stdout %q, want it to contain %q; stderr:\n%s",
			strings.Join(args, " "), got, code, stdout, want, stderr)
	}
	return stderr
}

// freeBasePort finds n consecutive free loopback ports below the kernel's
// ephemeral range (32768 and up on Linux): the tests stop and restart
// acceptors on the same ports, and a port in the ephemeral range can be
// taken in between by any process that binds port 0 or connects out.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	const lo, hi = 20000, 32000
	for range 100 {
		base := lo + rand.IntN(hi-lo-n)
		ok := true
		for i := 0; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports in [%d, %d)", n, lo, hi)
	return 0
}

func endpointsEnv(base, n int) []string {
	var eps []string
	for i := range n {
		eps = append(eps, fmt.Sprintf("127.0.0.1:%d", base+i))
	}
	return []string{"KSHAKA_ENDPOINTS=" + strings.Join(eps, ","), "KSHAKA_TIMEOUT=20s"}
}

// TestLocal runs `kshaka local` as a process and uses it as a user would:
// writes through the CLI, loses an acceptor to SIGKILL, stops with Ctrl-C,
// restarts on the same data, and finally refuses to start after a disk loss.
func TestLocal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base := freeBasePort(t, 3)
	env := endpointsEnv(base, 3)
	args := []string{"--dir", dir, "--base-port", strconv.Itoa(base), "--stop-timeout", "30s"}

	lp := startLocal(t, args...)
	lp.waitOutput(t, `the admin calls need the admin token created in \S+admin-token \(mode 0600\)`)
	lp.waitOutput(t, `installed the first configuration: epoch 1, members a0,a1,a2`)
	lp.waitOutput(t, `export KSHAKA_ENDPOINTS=`+strings.TrimPrefix(env[0], "KSHAKA_ENDPOINTS="))
	printed := lp.printedEnv(t)
	if !slices.Contains(printed, "KSHAKA_ADMIN_TOKEN_FILE="+filepath.Join(dir, "admin-token")) {
		t.Errorf("kshaka local does not print the admin token file: %v\n%s", printed, lp.output())
	}
	// The admin calls need the token; the data path does not.
	if code, _, stderr := kshaka(t, env, "status"); code != 6 || !strings.Contains(stderr, "admin token required") {
		t.Errorf("status without the admin token: exit %d\n%s", code, stderr)
	}
	env = append(env, printed...)

	expect(t, env, 0, "version 1", "put", "color", "red")
	expect(t, env, 0, "red\n", "get", "color")
	expect(t, env, 0, "version 2", "cas", "color", "1", "green")
	stderr := expect(t, env, 4, "", "cas", "color", "1", "blue")
	if !strings.Contains(stderr, "current version: 2") {
		t.Errorf("version mismatch does not print the current version:\n%s", stderr)
	}
	expect(t, env, 3, "", "get", "no-such-key")

	// Lose one acceptor of three: a quorum remains.
	if err := syscall.Kill(lp.pid(t, "a1"), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lp.waitOutput(t, `WARNING: acceptor a1 \(pid \d+, \S+\) stopped unexpectedly: it was killed by signal SIGKILL`)
	lp.waitOutput(t, `2 of 3 acceptors are still running`)
	expect(t, env, 0, "green\n", "get", "color")
	expect(t, env, 0, "version 3", "put", "color", "yellow")
	expect(t, env, 0, "Quorum: healthy", "status")
	if _, out, _ := kshaka(t, env, "status"); !regexp.MustCompile(`(?m)^a1 .* unreachable`).MatchString(out) {
		t.Errorf("status does not show a1 unreachable:\n%s", out)
	}
	lp.stop(t, syscall.SIGINT)
	if !strings.Contains(lp.stdout.String(), "stopped; the data stays in") {
		t.Errorf("no clean stop reported:\n%s", lp.output())
	}

	// Same directory again: the data and the configuration survive.
	lp = startLocal(t, args...)
	lp.waitOutput(t, `the admin calls need the admin token in \S+admin-token\n`)
	lp.waitOutput(t, `reusing epoch 1`)
	lp.waitOutput(t, `ready\. Connect with`)
	expect(t, env, 0, "yellow\n", "get", "color")
	expect(t, env, 0, "version 4", "cas", "color", "3", "purple")
	expect(t, env, 0, "Quorum: healthy", "status")
	lp.stop(t, syscall.SIGTERM)

	// A lost data directory is a membership change: refuse, explain, and
	// stop the acceptors that were started.
	if err := os.RemoveAll(filepath.Join(dir, "a2")); err != nil {
		t.Fatal(err)
	}
	lp = startLocal(t, args...)
	if code := lp.wait(t); code != 1 {
		t.Fatalf("kshaka local after a disk loss exited with %d, want 1:\n%s", code, lp.output())
	}
	for _, want := range []string{"storage was lost or replaced", "a2 (" + filepath.Join(dir, "a2") + ")", "rm -rf " + dir, "does not"} {
		if !strings.Contains(lp.stderr.String(), want) {
			t.Errorf("refusal does not mention %q:\n%s", want, lp.output())
		}
	}
	if !strings.Contains(lp.stdout.String(), "stopped; the data stays in") {
		t.Errorf("acceptors not stopped after the refusal:\n%s", lp.output())
	}
	for i := range 3 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
		if err != nil {
			t.Errorf("port of a%d still in use after kshaka local exited: %v", i, err)
			continue
		}
		l.Close()
	}
}

// TestLocalTLS runs `kshaka local --tls` and uses it with what it prints.
func TestLocalTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	base := freeBasePort(t, 3)
	lp := startLocal(t, "--tls", "--dir", dir, "--base-port", strconv.Itoa(base), "--stop-timeout", "30s")
	lp.waitOutput(t, `serving mutual TLS; CA and certificates in \S+ \(issued CA, a0\.crt`)
	env := lp.printedEnv(t)
	for _, want := range []string{"KSHAKA_CACERT=" + filepath.Join(dir, "tls", "ca.crt"), "KSHAKA_CERT=" + filepath.Join(dir, "tls", "admin", "tls.crt")} {
		if !slices.Contains(env, want) {
			t.Errorf("kshaka local --tls does not print %s: %v\n%s", want, env, lp.output())
		}
	}
	lp.waitOutput(t, `TLSDir: "`+regexp.QuoteMeta(filepath.Join(dir, "tls", "client"))+`"`)
	expect(t, env, 0, "version 1", "put", "color", "red")
	expect(t, env, 0, "red\n", "get", "color")
	expect(t, env, 0, "Quorum: healthy", "status")

	// With the client certificate: the data path, not status.
	client := append(slices.Clone(env), "KSHAKA_CERT="+filepath.Join(dir, "tls", "client", "tls.crt"), "KSHAKA_KEY="+filepath.Join(dir, "tls", "client", "tls.key"))
	expect(t, client, 0, "red\n", "get", "color")
	if code, _, stderr := kshaka(t, client, "status"); code != 6 || !strings.Contains(stderr, "needs role admin") {
		t.Errorf("status with the client certificate: exit %d\n%s", code, stderr)
	}
	// Without TLS: refused, and said so.
	if code, _, stderr := kshaka(t, env[:1], "get", "color"); code != 7 || !strings.Contains(stderr, "plaintext") {
		t.Errorf("get in plaintext: exit %d\n%s", code, stderr)
	}
	lp.stop(t, syscall.SIGINT)

	// Again: the certificates are reused, the data kept.
	lp = startLocal(t, "--tls", "--dir", dir, "--base-port", strconv.Itoa(base), "--demo", "--exit")
	if code := lp.wait(t); code != 0 {
		t.Fatalf("kshaka local --tls --demo --exit: %d\n%s", code, lp.output())
	}
	for _, want := range []string{"(reused)", "Self-check passed"} {
		if !strings.Contains(lp.stdout.String(), want) {
			t.Errorf("second run lacks %q:\n%s", want, lp.output())
		}
	}
}

// TestLocalDemoExit is the README's quick start: the self-check runs and
// kshaka local exits 0, stopping its acceptors.
func TestLocalDemoExit(t *testing.T) {
	base := freeBasePort(t, 3)
	lp := startLocal(t, "--dir", t.TempDir(), "--base-port", strconv.Itoa(base), "--demo", "--exit")
	if code := lp.wait(t); code != 0 {
		t.Fatalf("kshaka local --demo --exit exited with %d:\n%s", code, lp.output())
	}
	for _, want := range []string{"Self-check passed", "refused as it must be", "a0 stopped", "a2 stopped"} {
		if !strings.Contains(lp.stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, lp.output())
		}
	}
}

func TestLocalUsage(t *testing.T) {
	for _, args := range [][]string{
		{"local", "--exit"},
		{"local", "--acceptors", "0"},
		{"local", "extra"},
		{"local", "--cacert", "ca.pem"},
		{"local", "--no-such-flag"},
	} {
		code, _, stderr := kshaka(t, nil, args...)
		if code != 2 || !strings.Contains(stderr, "--help") {
			t.Errorf("kshaka %v: exit %d, want 2 with a pointer to --help; stderr:\n%s", args, code, stderr)
		}
	}
	code, _, stderr := kshaka(t, nil, "local", "--acceptor-bin", filepath.Join(t.TempDir(), "missing"))
	if code != 1 || !strings.Contains(stderr, "--acceptor-bin") {
		t.Errorf("missing acceptor binary: exit %d, stderr:\n%s", code, stderr)
	}
}

func TestLocalPortInUse(t *testing.T) {
	base := freeBasePort(t, 3)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+1))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, _, stderr := kshaka(t, nil, "local", "--dir", t.TempDir(), "--base-port", strconv.Itoa(base))
	if want := fmt.Sprintf("cannot use 127.0.0.1:%d for a1", base+1); code != 1 || !strings.Contains(stderr, want) {
		t.Errorf("port in use: exit %d, want 1 and %q in stderr:\n%s", code, want, stderr)
	}
}
