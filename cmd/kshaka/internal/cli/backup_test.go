package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/internal/backup"
	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// testKeys is how many keys the backup tests write.
const testKeys = 300

func testKey(i int) []byte { return []byte(fmt.Sprintf("key/%04d", i)) }

// fill writes testKeys keys to c, overwrites every third and deletes every
// tenth, and returns a client of c.
func fill(t *testing.T, c *acceptortest.Cluster) *proposer.Client {
	t.Helper()
	p := newTestProposer(t, c.Addrs())
	ctx := testCtx(t)
	for i := range testKeys {
		if _, err := p.Put(ctx, testKey(i), []byte(fmt.Sprint("value ", i))); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := p.Put(ctx, testKey(i), bytes.Repeat([]byte{byte(i)}, i)); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 0 {
			if err := p.Delete(ctx, testKey(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return p
}

func newTestProposer(t *testing.T, addrs []string) *proposer.Client {
	t.Helper()
	p, err := proposer.New(context.Background(), proposer.Config{Endpoints: addrs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// sameKeys fails unless every test key has the same register value, version
// and tombstone in both clusters.
func sameKeys(t *testing.T, a, b *proposer.Client) {
	t.Helper()
	ctx := testCtx(t)
	for i := range testKeys {
		ra, err := a.Export(ctx, testKey(i))
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.Export(ctx, testKey(i))
		if err != nil {
			t.Fatal(err)
		}
		if ra.Version != rb.Version || ra.Deleted != rb.Deleted || !bytes.Equal(ra.Data, rb.Data) {
			t.Fatalf("key %s: source %+v, restored %+v", testKey(i), ra, rb)
		}
	}
}

// storedKeys counts the keys every acceptor of c stores (Admin ListKeys).
func storedKeys(t *testing.T, c *acceptortest.Cluster) int {
	t.Helper()
	n := 0
	for _, addr := range c.Addrs() {
		conn, err := adminclient.Dial(addr, c.AdminCredentials(), "")
		if err != nil {
			t.Fatal(err)
		}
		keys, err := backup.ListKeysPages(conn)(testCtx(t), nil, 100000)
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		n += len(keys)
	}
	return n
}

// progressLines parses --progress json output.
func progressLines(t *testing.T, stderr string) []progressLine {
	t.Helper()
	var out []progressLine
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var p progressLine
		if err := json.Unmarshal([]byte(l), &p); err != nil {
			t.Fatalf("progress line %q is not JSON: %v\nstderr:\n%s", l, err, stderr)
		}
		out = append(out, p)
	}
	return out
}

// A backup of a cluster with writes and deletes restores into a new cluster
// with every value and version; a rerun is a no-op.
func TestBackupRestore(t *testing.T) {
	src := acceptortest.StartCluster(t, 3)
	ps := fill(t, src)
	file := filepath.Join(t.TempDir(), "b.kbk")

	r := must(t, 0, "sha256: ", "backup", "--out", file, "--progress", "json", endpointsFlag(src))
	wantSummary := fmt.Sprintf("backup: %s\nkeys: %d\ntombstones: %d\n", file, testKeys, testKeys/10)
	if !strings.HasPrefix(r.stdout, wantSummary) {
		t.Errorf("summary:\n%s\nwant it to start with:\n%s", r.stdout, wantSummary)
	}
	lines := progressLines(t, r.stderr)
	last := lines[len(lines)-1]
	if lines[0].Phase != "listing" || last.Phase != "done" || last.Keys != testKeys || last.Percent != 100 ||
		len(last.SHA256) != 64 || last.Path != file || !strings.Contains(r.stdout, last.SHA256) {
		t.Errorf("progress lines %+v", lines)
	}
	if _, err := os.Stat(file + backup.PartialSuffix); !os.IsNotExist(err) {
		t.Errorf("the .partial file is left: %v", err)
	}

	r = must(t, 0, "(intact)", "restore", "--verify-only", "--from", file)
	if !strings.Contains(r.stdout, fmt.Sprintf("keys: %d\n", testKeys)) || !strings.Contains(r.stdout, last.SHA256) {
		t.Errorf("verify-only summary:\n%s", r.stdout)
	}

	dst := acceptortest.StartCluster(t, 3)
	r = must(t, 0, "restored: "+file, "restore", "--from", file, "--progress", "json", endpointsFlag(dst))
	lines = progressLines(t, r.stderr)
	if lines[0].Phase != "verifying" || lines[len(lines)-1].Phase != "done" || lines[len(lines)-1].Keys != testKeys {
		t.Errorf("restore progress lines %+v", lines)
	}
	pd := newTestProposer(t, dst.Addrs())
	sameKeys(t, ps, pd)
	// Versions go on from the backup's.
	ctx := testCtx(t)
	before, err := pd.Export(ctx, testKey(3))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := pd.Put(ctx, testKey(3), []byte("after")); err != nil || v.Version != before.Version+1 {
		t.Fatalf("Put after restore = %+v, %v; want version %d", v, err, before.Version+1)
	}
	if _, err := pd.Put(ctx, testKey(3), before.Data); err != nil {
		t.Fatal(err)
	}

	// A rerun changes nothing, except the key changed above: a conflict.
	r = must(t, ExitVersionMismatch, "", "restore", "--from", file, endpointsFlag(dst))
	if !strings.Contains(r.stderr, fmt.Sprintf("%q", testKey(3))) || !strings.Contains(r.stderr, "new, empty cluster") {
		t.Errorf("a conflict does not name the key and the remedy:\n%v", r)
	}
	dst2 := acceptortest.StartCluster(t, 3)
	must(t, 0, "restored", "restore", "--from", file, endpointsFlag(dst2))
	must(t, 0, "restored", "restore", "--from", file, endpointsFlag(dst2))
	sameKeys(t, ps, newTestProposer(t, dst2.Addrs()))

	// --out - writes the backup to stdout, the summary to stderr.
	r = must(t, 0, "", "backup", "--out", "-", endpointsFlag(src))
	sum, err := backup.Verify(strings.NewReader(r.stdout))
	if err != nil || sum.Keys != testKeys || !strings.Contains(r.stderr, "sha256: "+sum.SHA256Hex()) {
		t.Errorf("--out -: %+v, %v\nstderr:\n%s", sum, err, r.stderr)
	}
}

// A truncated file and a file with one flipped byte are refused before
// anything is written.
func TestRestoreRefusesCorruptFiles(t *testing.T) {
	src := acceptortest.StartCluster(t, 3)
	fill(t, src)
	dir := t.TempDir()
	file := filepath.Join(dir, "b.kbk")
	must(t, 0, "sha256", "backup", "--out", file, endpointsFlag(src))
	valid, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(valid)
	flipped[len(flipped)/2] ^= 0x01
	dst := acceptortest.StartCluster(t, 3)
	for name, b := range map[string][]byte{
		"truncated":  valid[:len(valid)-100],
		"flipped":    flipped,
		"not backup": []byte("hello"),
	} {
		bad := filepath.Join(dir, name)
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"restore", "--from", bad, endpointsFlag(dst)}, {"restore", "--verify-only", "--from", bad}} {
			r := run("", args...)
			if r.code != ExitCorrupt || !strings.Contains(r.stderr, "backup file corrupt at byte") || !strings.Contains(r.stderr, "nothing was restored") {
				t.Errorf("%s: %v", name, r)
			}
		}
	}
	if n := storedKeys(t, dst); n != 0 {
		t.Fatalf("a refused restore wrote %d keys", n)
	}
}

// Under mutual TLS a backup needs an admin certificate; a restore works
// with a client certificate.
func TestBackupRestoreMutualTLS(t *testing.T) {
	src := acceptortest.StartTLSCluster(t, 3, func(_ int, o *acceptor.Options) { o.AdminToken = "tok" })
	files := func(c *acceptortest.Cluster, name, org string) []string {
		dir := c.ClientDir(name, org)
		return []string{endpointsFlag(c), "--cacert", filepath.Join(dir, "ca.crt"), "--cert", filepath.Join(dir, "tls.crt"), "--key", filepath.Join(dir, "tls.key")}
	}
	for i := range 20 {
		must(t, 0, "version 1", append([]string{"put", fmt.Sprint("k", i), "v"}, files(src, fmt.Sprint("app", i), pki.OrgClient)...)...)
	}
	file := filepath.Join(t.TempDir(), "b.kbk")
	r := run("", append([]string{"backup", "--out", file}, files(src, "app", pki.OrgClient)...)...)
	if r.code != ExitAccess || !strings.Contains(r.stderr, "O=kshaka:admin") {
		t.Errorf("backup with a client certificate: %v", r)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("a refused backup left %s: %v", file, err)
	}
	must(t, 0, "keys: 20\n", append([]string{"backup", "--out", file, "--admin-token", "tok"}, files(src, "operator", pki.OrgAdmin)...)...)

	dst := acceptortest.StartTLSCluster(t, 3, nil)
	must(t, 0, "keys: 20\n", append([]string{"restore", "--from", file}, files(dst, "app", pki.OrgClient)...)...)
	must(t, 0, "v\n", append([]string{"get", "k7"}, files(dst, "app2", pki.OrgClient)...)...)
	// Each key is on an accept quorum at least (the third accept may still
	// be on its way).
	if n := storedKeys(t, dst); n < 40 {
		t.Errorf("the restored cluster stores %d keys on its 3 acceptors, want at least 40", n)
	}
}

func TestBackupUsage(t *testing.T) {
	for _, args := range [][]string{
		{"backup"},
		{"backup", "--out", "f", "--concurrency", "0"},
		{"backup", "--out", "f", "--progress", "loud"},
		{"restore"},
		{"restore", "--from", "-"},
	} {
		if r := run("", args...); r.code != ExitUsage {
			t.Errorf("kshaka %s: %v, want exit %d", strings.Join(args, " "), r, ExitUsage)
		}
	}
	if r := run("", "restore", "--from", filepath.Join(t.TempDir(), "missing")); r.code != ExitError || !strings.Contains(r.stderr, "no such file") {
		t.Errorf("restore of a missing file: %v", r)
	}
}

func TestProgressText(t *testing.T) {
	p := &progress{mode: progressText, verb: func(string) string { return "backed up" }}
	got := p.text(progressLine{Phase: "reading", Keys: 45000, EstimatedKeys: 100000, Bytes: 4_100_000, Percent: 45, KeysPerSecond: 9800})
	if want := "backed up 45,000 of ~100,000 keys (45%), 4.1 MB, 9,800 keys/s"; got != want {
		t.Errorf("text = %q, want %q", got, want)
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if g := group(n); g != want {
			t.Errorf("group(%d) = %q, want %q", n, g, want)
		}
	}
}

// A backup that fails part way leaves neither FILE nor FILE.partial, and an
// older FILE stays as it was. The key it cannot read is one the proposer
// refuses (longer than its limit), accepted by acceptors with a higher one.
func TestFailedBackupLeavesNoFile(t *testing.T) {
	c := acceptortest.StartClusterWith(t, 3, func(_ int, o *acceptor.Options) { o.MaxKeySize = 4096 })
	p := newTestProposer(t, c.Addrs())
	for i := range 50 {
		if _, err := p.Put(testCtx(t), testKey(i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "b.kbk")
	must(t, 0, "keys: 50\n", "backup", "--out", file, endpointsFlag(c))
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}

	long := append([]byte("zz/"), bytes.Repeat([]byte("x"), proposer.MaxKeySize)...)
	for _, addr := range c.Addrs() {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = kshakav1.NewAcceptorClient(conn).Accept(testCtx(t), &kshakav1.AcceptRequest{Epoch: c.Config().Epoch, Items: []*kshakav1.AcceptItem{{
			Key: long, Ballot: &kshakav1.Ballot{Counter: 1, Proposer: 7}, Value: &kshakav1.Value{Version: 1, Data: []byte("v")},
		}}})
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	r := run("", "backup", "--out", file, endpointsFlag(c))
	if r.code != ExitError || !strings.Contains(r.stderr, "no backup was written") || !strings.Contains(r.stderr, "the limit is 1024") {
		t.Errorf("backup with an unreadable key: %v", r)
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.Equal(b, old) {
		t.Errorf("a failed backup changed the earlier backup file: %v", err)
	}
	if _, err := os.Stat(file + backup.PartialSuffix); !os.IsNotExist(err) {
		t.Errorf("a failed backup left the .partial file: %v", err)
	}
}
