package proposer_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/proposer"
)

// Export keeps what Get hides: a tombstone and its version.
func TestExportKeepsTombstones(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	ctx := ctxT(t)
	k := []byte("k")

	if r, err := c.Export(ctx, k); err != nil || r.Version != 0 || r.Deleted || r.Data != nil {
		t.Fatalf("Export of a key never written = %+v, %v; want Record{}", r, err)
	}
	for _, v := range []string{"a", "b"} {
		if _, err := c.Put(ctx, k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := c.Export(ctx, k); err != nil || r.Version != 2 || r.Deleted || string(r.Data) != "b" {
		t.Fatalf("Export = %+v, %v; want version 2 %q", r, err, "b")
	}
	if err := c.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Export(ctx, k); err != nil || r.Version != 3 || !r.Deleted || r.Data != nil {
		t.Fatalf("Export of a deleted key = %+v, %v; want a tombstone at version 3", r, err)
	}
	if _, err := c.Put(ctx, []byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Export(ctx, []byte("empty")); err != nil || r.Version != 1 || r.Deleted || r.Data == nil || len(r.Data) != 0 {
		t.Fatalf("Export of an empty value = %+v, %v; want version 1 with empty, non-nil Data", r, err)
	}
}

// Restore into an empty cluster writes the record's version, and versions go
// on from it: never reused after a restore.
func TestRestoreContinuesVersions(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	ctx := ctxT(t)

	if err := c.Restore(ctx, []byte("live"), proposer.Record{Version: 7, Data: []byte("seven")}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	v, err := c.Get(ctx, []byte("live"))
	if err != nil || v.Version != 7 || string(v.Data) != "seven" {
		t.Fatalf("Get after Restore = %+v, %v; want version 7 %q", v, err, "seven")
	}
	if _, err := c.CompareAndSwap(ctx, []byte("live"), 6, []byte("old")); !errors.Is(err, proposer.ErrVersionMismatch) {
		t.Fatalf("CompareAndSwap at an older version: %v, want ErrVersionMismatch", err)
	}
	if v, err := c.Put(ctx, []byte("live"), []byte("eight")); err != nil || v.Version != 8 {
		t.Fatalf("Put after Restore = %+v, %v; want version 8", v, err)
	}

	if err := c.Restore(ctx, []byte("gone"), proposer.Record{Version: 4, Deleted: true}); err != nil {
		t.Fatalf("Restore of a tombstone: %v", err)
	}
	if _, err := c.Get(ctx, []byte("gone")); !errors.Is(err, proposer.ErrNotFound) {
		t.Fatalf("Get of a restored tombstone: %v, want ErrNotFound", err)
	}
	if r, err := c.Export(ctx, []byte("gone")); err != nil || r.Version != 4 || !r.Deleted {
		t.Fatalf("Export of a restored tombstone = %+v, %v", r, err)
	}
	if v, err := c.CompareAndSwap(ctx, []byte("gone"), 0, []byte("back")); err != nil || v.Version != 5 {
		t.Fatalf("CompareAndSwap 0 on a restored tombstone = %+v, %v; want version 5", v, err)
	}
}

// Restore of a key that already holds the record is a no-op (a rerun);
// another value is a conflict that changes nothing.
func TestRestoreConflict(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	ctx := ctxT(t)
	k := []byte("k")
	rec := proposer.Record{Version: 3, Data: []byte("x")}

	for i := range 2 {
		if err := c.Restore(ctx, k, rec); err != nil {
			t.Fatalf("Restore #%d: %v", i+1, err)
		}
	}
	for _, other := range []proposer.Record{
		{Version: 3, Data: []byte("y")},
		{Version: 4, Data: []byte("x")},
		{Version: 3, Deleted: true},
	} {
		err := c.Restore(ctx, k, other)
		var rc *proposer.RestoreConflictError
		if !errors.As(err, &rc) || !errors.Is(err, proposer.ErrRestoreConflict) {
			t.Fatalf("Restore of %+v over %+v: %v, want a *RestoreConflictError", other, rec, err)
		}
		if !bytes.Equal(rc.Key, k) || rc.Current.Version != 3 || string(rc.Current.Data) != "x" || rc.Restoring.Version != other.Version {
			t.Errorf("conflict = %+v", rc)
		}
	}
	if v, err := c.Get(ctx, k); err != nil || v.Version != 3 || string(v.Data) != "x" {
		t.Fatalf("after conflicts Get = %+v, %v; want version 3 %q unchanged", v, err, "x")
	}

	if _, err := c.Put(ctx, []byte("written"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := c.Restore(ctx, []byte("written"), proposer.Record{Version: 1, Data: []byte("other")}); !errors.Is(err, proposer.ErrRestoreConflict) {
		t.Fatalf("Restore over a written key: %v", err)
	}
}

func TestRestoreRefusesBadRecords(t *testing.T) {
	cl := acceptortest.StartCluster(t, 1)
	c := newClient(t, cl.Addrs(), nil)
	ctx := ctxT(t)
	for _, r := range []proposer.Record{
		{Version: 0, Data: []byte("x")},
		{Version: 2, Deleted: true, Data: []byte("x")},
		{Version: 1, Data: make([]byte, proposer.MaxValueSize+1)},
	} {
		if err := c.Restore(ctx, []byte("k"), r); !errors.Is(err, proposer.ErrInvalidArgument) {
			t.Errorf("Restore(Version %d, Deleted %v, %d bytes): %v, want ErrInvalidArgument", r.Version, r.Deleted, len(r.Data), err)
		}
	}
	if r, err := c.Export(ctx, []byte("k")); err != nil || r.Version != 0 {
		t.Fatalf("after refused restores Export = %+v, %v; want nothing written", r, err)
	}
}
