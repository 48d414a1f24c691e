package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
)

func TestMain(m *testing.M) {
	if os.Getenv(benchWorkerTestEnv) == "1" {
		// This test binary was started as a contention worker (see
		// useTestBenchWorkers).
		os.Exit(Run(context.Background(), []string{"bench", "worker"}, StdIO()))
	}
	goleak.VerifyTestMain(m)
}

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// run runs kshaka in-process with stdin.
func run(stdin string, args ...string) result {
	var out, errw bytes.Buffer
	code := Run(context.Background(), args, IO{In: strings.NewReader(stdin), Out: &out, Err: &errw})
	return result{code, out.String(), errw.String()}
}

// must runs kshaka and fails unless the exit code is code and stdout
// contains want.
func must(t *testing.T, code int, want string, args ...string) result {
	t.Helper()
	return mustIn(t, "", code, want, args...)
}

func mustIn(t *testing.T, stdin string, code int, want string, args ...string) result {
	t.Helper()
	r := run(stdin, args...)
	if r.code != code || !strings.Contains(r.stdout, want) {
		t.Fatalf("kshaka %s: want exit %d and stdout containing %q; got %v", strings.Join(args, " "), code, want, r)
	}
	return r
}

func endpointsFlag(c *acceptortest.Cluster) string {
	return "--endpoints=" + strings.Join(c.Addrs(), ",")
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestKeyCommands(t *testing.T) {
	c := acceptortest.StartCluster(t, 3)
	ep := endpointsFlag(c)

	must(t, 0, "version 1\n", "put", "k", "v", ep)
	mustIn(t, "from\nstdin", 0, "version 2\n", "put", "k", "-", ep)
	must(t, 0, "from\nstdin\n", "get", "k", ep)
	if r := must(t, 0, "", "get", "k", "-o", "raw", ep); r.stdout != "from\nstdin" {
		t.Errorf("-o raw printed %q", r.stdout)
	}
	if r := must(t, 0, "from\nstdin\n", "get", "k", "--verbose", ep); r.stderr != "version 2\n" {
		t.Errorf("--verbose printed %q on stderr", r.stderr)
	}
	var j jsonValue
	if err := json.Unmarshal([]byte(must(t, 0, "", "get", "k", "-o", "json", ep).stdout), &j); err != nil {
		t.Fatal(err)
	}
	if j.Key != "k" || j.Version != 2 || j.Value == nil || *j.Value != "from\nstdin" {
		t.Errorf("-o json = %+v", j)
	}
	must(t, 0, "version 3\n", "cas", "k", "2", "x", ep)

	r := must(t, ExitVersionMismatch, "", "cas", "k", "2", "y", ep)
	if !strings.Contains(r.stderr, "current version: 3") {
		t.Errorf("version mismatch without the current version: %v", r)
	}
	must(t, 0, "x\n", "get", "k", ep)
	must(t, ExitNotFound, "", "get", "missing", ep)
	r = must(t, ExitVersionMismatch, "", "cas", "missing", "1", "y", ep)
	if !strings.Contains(r.stderr, "does not exist") {
		t.Errorf("cas on a missing key does not say so: %v", r)
	}
	must(t, 0, "version 1\n", "cas", "created", "0", "new", ep)

	must(t, 0, "deleted\n", "delete", "k", ep)
	must(t, ExitNotFound, "", "get", "k", ep)
	must(t, 0, "version 5\n", "cas", "k", "0", "again", ep) // versions go on across a delete

	// One acceptor of three down: still readable and writable.
	c.Kill(1)
	must(t, 0, "again\n", "get", "k", ep)
	must(t, 0, "version 6\n", "put", "k", "still", ep)
}

func TestStatus(t *testing.T) {
	c := acceptortest.StartCluster(t, 3)
	addrs := c.Addrs()
	// One endpoint is enough to find every member.
	r := must(t, 0, "Quorum: healthy", "status", "--endpoints", addrs[2])
	for i, addr := range addrs {
		row := regexp.MustCompile(fmt.Sprintf(`(?m)^a%d +%s +[0-9a-f]+ +1 +yes +yes +\d+`, i, regexp.QuoteMeta(addr)))
		if !row.MatchString(r.stdout) {
			t.Errorf("no healthy row for a%d:\n%s", i, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "prepare set P: a0,a1,a2, quorum 2 of 3") {
		t.Errorf("configuration missing:\n%s", r.stdout)
	}

	c.Kill(0)
	r = must(t, 0, "Quorum: healthy (serving: 2 of P", "status", "--endpoints", addrs[0]+","+addrs[1])
	if !regexp.MustCompile(`(?m)^a0 .* unreachable: `).MatchString(r.stdout) {
		t.Errorf("a0 not reported unreachable:\n%s", r.stdout)
	}

	c.Kill(1)
	r = must(t, ExitUnreachable, "NOT healthy", "status", "-o", "text", endpointsFlag(c))
	var st clusterStatus
	r = must(t, ExitUnreachable, "", "status", "-o", "json", endpointsFlag(c))
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, r.stdout)
	}
	if st.QuorumReady || st.PrepareUp != 1 || len(st.Members) != 3 || st.Config.Epoch != 1 || !st.Members[2].Serving {
		t.Errorf("status -o json = %+v", st)
	}
	must(t, ExitUnreachable, "", "get", "k", "--timeout", "2s", endpointsFlag(c))
}

func TestUnreachable(t *testing.T) {
	ep := "--endpoints=" + closedAddr(t) + "," + closedAddr(t)
	for _, args := range [][]string{
		{"get", "k"}, {"put", "k", "v"}, {"cas", "k", "1", "v"}, {"delete", "k"}, {"status"},
	} {
		r := run("", append(args, ep, "--timeout", "2s")...)
		if r.code != ExitUnreachable {
			t.Errorf("kshaka %v against closed ports: %v", args, r)
		}
	}
}

func TestAdminToken(t *testing.T) {
	c := acceptortest.StartClusterWith(t, 3, func(_ int, o *acceptor.Options) { o.AdminToken = "s3cret" })
	ep := endpointsFlag(c)
	r := must(t, ExitUnreachable, "", "status", ep)
	if !strings.Contains(r.stderr, "check --admin-token") {
		t.Errorf("a refused token is not explained:\n%v", r)
	}
	must(t, 0, "Quorum: healthy", "status", "--admin-token", "s3cret", ep)
	must(t, 0, "version 1", "put", "k", "v", ep) // the data path needs no token

	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, 0, "Quorum: healthy", "status", "--admin-token-file", file, ep)
	t.Setenv("KSHAKA_ADMIN_TOKEN_FILE", file)
	must(t, 0, "Quorum: healthy", "status", ep)
	t.Setenv("KSHAKA_ADMIN_TOKEN_FILE", "")
	t.Setenv("KSHAKA_ADMIN_TOKEN", "s3cret")
	must(t, 0, "Quorum: healthy", "status", ep)
	t.Setenv("KSHAKA_ADMIN_TOKEN", "")

	if r := run("", "status", "--admin-token-file", filepath.Join(t.TempDir(), "none"), ep); r.code != ExitError || !strings.Contains(r.stderr, "--admin-token-file") {
		t.Errorf("a missing token file: %v", r)
	}

	// On loopback, the token of a kshaka local in ./kshaka-data is found.
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(defaultLocalDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(defaultLocalDir, adminTokenFileName), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	must(t, 0, "Quorum: healthy", "status", ep)
}

func TestEnvironment(t *testing.T) {
	c := acceptortest.StartCluster(t, 3)
	t.Setenv("KSHAKA_ENDPOINTS", strings.Join(c.Addrs(), ","))
	must(t, 0, "version 1", "put", "k", "v")
	t.Setenv("KSHAKA_TIMEOUT", "soon")
	if r := run("", "get", "k"); r.code != ExitUsage || !strings.Contains(r.stderr, "KSHAKA_TIMEOUT") {
		t.Errorf("bad KSHAKA_TIMEOUT: %v", r)
	}
	// A flag wins over the environment.
	must(t, 0, "v\n", "get", "k", "--timeout", "10s")
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"get"},
		{"get", "a", "b"},
		{"get", ""},
		{"get", "k", "--bogus"},
		{"get", "k", "-o", "yaml"},
		{"put", "k"},
		{"cas", "k", "one", "v"},
		{"cas", "k", "-1", "v"},
		{"delete"},
		{"status", "extra"},
		{"get", "k", "--timeout", "0s"},
		{"get", "k", "--endpoints", ","},
		{"get", "k", "--cert", "c.pem"},
		{"status", "--admin-token", "a", "--admin-token-file", "f"},
		{"version", "x"},
	} {
		r := run("", args...)
		want := ExitUsage
		if len(args) == 0 {
			want = ExitOK // help
		}
		if r.code != want {
			t.Errorf("kshaka %q: %v", args, r)
		}
		if want == ExitUsage && !strings.Contains(r.stderr, "--help' for usage") {
			t.Errorf("kshaka %q: no pointer to --help: %v", args, r)
		}
	}
	r := must(t, 0, "Exit codes:", "--help")
	for _, s := range []string{"3  key not found", "5  unknown outcome", "KSHAKA_ENDPOINTS", "local"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("--help lacks %q", s)
		}
	}
	for _, cmd := range []string{"get", "put", "cas", "delete", "status", "local", "version"} {
		if r := run("", cmd, "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("kshaka %s --help: %v", cmd, r)
		}
	}
	must(t, 0, "kshaka ", "version")
	must(t, 0, "kshaka ", "--version")
}
