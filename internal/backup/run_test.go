package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/proposer"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pages serves a sorted key list the way Admin ListKeys does; failAfter > 0
// makes every call after that many fail.
func pages(keys []string, failAfter int) PageFunc {
	calls := 0
	return func(_ context.Context, after []byte, limit int) ([][]byte, error) {
		calls++
		if failAfter > 0 && calls > failAfter {
			return nil, errors.New("connection refused")
		}
		var out [][]byte
		for _, k := range keys {
			if (after == nil || k > string(after)) && len(out) < limit {
				out = append(out, []byte(k))
			}
		}
		return out, nil
	}
}

func collect(t *testing.T, k *Keys) ([]string, error) {
	t.Helper()
	var out []string
	for {
		key, err := k.Next(context.Background())
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(key))
	}
}

// The merge is the sorted union of the listings, each key once, across
// page boundaries.
func TestMergeKeysUnion(t *testing.T) {
	a := []string{"a", "c", "d", "f", "g"}
	b := []string{"b", "c", "e", "g"}
	c := []string{}
	got, err := collect(t, MergeKeys([]Source{{"a0", pages(a, 0)}, {"a1", pages(b, 0)}, {"a2", pages(c, 0)}}, 2, 2))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d", "e", "f", "g"}; !slices.Equal(got, want) {
		t.Fatalf("merged = %v, want %v", got, want)
	}
}

// A failing acceptor is left out while a quorum remains; below a quorum the
// listing fails and names the acceptors.
func TestMergeKeysFailures(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e"}
	got, err := collect(t, MergeKeys([]Source{{"a0", pages(keys, 1)}, {"a1", pages(keys, 0)}, {"a2", pages(keys, 0)}}, 2, 2))
	if err != nil || !slices.Equal(got, keys) {
		t.Fatalf("one of three failing: %v, %v; want every key", got, err)
	}
	_, err = collect(t, MergeKeys([]Source{{"a0", pages(keys, 1)}, {"a1", pages(keys, 2)}, {"a2", pages(keys, 0)}}, 2, 2))
	if err == nil || !strings.Contains(err.Error(), "fewer than 2 acceptors") || !strings.Contains(err.Error(), "a0") || !strings.Contains(err.Error(), "a1") {
		t.Fatalf("two of three failing: %v", err)
	}
	bad := func(context.Context, []byte, int) ([][]byte, error) { return [][]byte{[]byte("b"), []byte("a")}, nil }
	_, err = collect(t, MergeKeys([]Source{{"a0", bad}}, 1, 10))
	if err == nil || !strings.Contains(err.Error(), "ascending") {
		t.Fatalf("unsorted listing: %v", err)
	}
}

// Dump and Load against real acceptors: a backup of a cluster with
// writes and deletes restores into a new cluster with the same values and
// versions; a second Load is a no-op.
func TestDumpLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := acceptortest.StartCluster(t, 3)
	p := client(t, src)
	const n = 500
	for i := range n {
		k := []byte(fmt.Sprintf("key-%04d", i))
		if _, err := p.Put(ctx, k, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if _, err := p.Put(ctx, k, []byte(fmt.Sprint("again", i))); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 0 {
			if err := p.Delete(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	var sources []Source
	for i, addr := range src.Addrs() {
		conn, err := adminclient.Dial(addr, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		sources = append(sources, Source{Name: fmt.Sprint("a", i), Page: ListKeysPages(conn)})
	}
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{})
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := Dump(ctx, MergeKeys(sources, 2, 64), p.Export, w, 16, &st); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if sum.Keys != n || sum.Tombstones != n/10 || st.Keys.Load() != n {
		t.Fatalf("summary %+v, stats keys %d; want %d keys, %d tombstones", sum, st.Keys.Load(), n, n/10)
	}

	dst := acceptortest.StartCluster(t, 3)
	q := client(t, dst)
	for range 2 {
		r, err := NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		var ls Stats
		if err := Load(ctx, r, q.Restore, 16, &ls); err != nil {
			t.Fatalf("Load: %v", err)
		}
		if ls.Keys.Load() != n {
			t.Fatalf("Load restored %d keys, want %d", ls.Keys.Load(), n)
		}
	}
	for i := range n {
		k := []byte(fmt.Sprintf("key-%04d", i))
		a, err := p.Export(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		b, err := q.Export(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if a.Version != b.Version || a.Deleted != b.Deleted || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("key %s: source %+v, restored %+v", k, a, b)
		}
	}

	// A different value in the target stops the restore with the key named.
	if _, err := q.Put(ctx, []byte("key-0001"), []byte("changed")); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	err = Load(ctx, r, q.Restore, 16, nil)
	if !errors.Is(err, proposer.ErrRestoreConflict) || !strings.Contains(err.Error(), `"key-0001"`) {
		t.Fatalf("Load over a changed key: %v", err)
	}
}

func client(t *testing.T, c *acceptortest.Cluster) *proposer.Client {
	t.Helper()
	p, err := proposer.New(context.Background(), proposer.Config{Endpoints: c.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func TestFileCommitAndAbort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.kbk")
	f, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("x"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the final name exists before Commit: %v", err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "x" {
		t.Fatalf("after Commit: %q, %v", b, err)
	}
	if _, err := os.Stat(path + PartialSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the .partial file is left after Commit: %v", err)
	}
	g, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Abort(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "x" {
		t.Fatalf("Abort touched the committed file: %q, %v", b, err)
	}
	if _, err := os.Stat(path + PartialSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the .partial file is left after Abort: %v", err)
	}
}
