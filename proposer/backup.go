package proposer

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/register"
)

// Record is a key's raw register value, for backup and restore tools: unlike
// Value it keeps a deleted key's tombstone and its version, so that versions
// never go backwards after a restore. Version 0 is a key that was never
// written (it has no Data and is not Deleted).
type Record struct {
	Version uint64
	// Data is nil for a tombstone.
	Data []byte
	// Deleted: the last change was a delete; Version counts it.
	Deleted bool
}

// ErrRestoreConflict: Restore found the key at another value. The error is
// a *RestoreConflictError.
var ErrRestoreConflict = errors.New("kshaka: restore conflict")

// RestoreConflictError is returned by Restore when the key already holds a
// value other than the one to restore. Nothing was changed; the answer is
// authoritative (the unchanged value was accepted by a quorum).
type RestoreConflictError struct {
	Key []byte
	// Current is the key's value in the cluster.
	Current Record
	// Restoring is the value Restore was asked to write.
	Restoring Record
}

func (e *RestoreConflictError) Error() string {
	state := "a value"
	if e.Current.Deleted {
		state = "a tombstone"
	}
	return fmt.Sprintf("kshaka: cannot restore key %q at version %d: the cluster already holds %s at version %d (restore writes only into empty keys)",
		e.Key, e.Restoring.Version, state, e.Current.Version)
}

// Is makes errors.Is(err, ErrRestoreConflict) true.
func (e *RestoreConflictError) Is(target error) bool { return target == ErrRestoreConflict }

// Export returns the key's register value as it is, tombstone included, for
// backup tools. Like Get it is linearizable: a quorum read that falls back
// to an identity change when the acceptors do not agree (docs/design.md
// §2.5). A key that was never written is Record{} (Version 0), not an error.
func (c *Client) Export(ctx context.Context, key []byte) (Record, error) {
	if err := checkKey(key); err != nil {
		return Record{}, err
	}
	if err := c.enter(); err != nil {
		return Record{}, err
	}
	defer c.wg.Done()
	key = clone(key)
	rd := keyproc.NewQuorumRead(c.kcfg, c.config())
	for {
		if err := c.read(ctx, rd, key); err != nil {
			return Record{}, err
		}
		if rd.State() == keyproc.ReadDone {
			return recordOf(rd.Value()), nil
		}
		if !rd.Retry(c.config()) {
			break
		}
	}
	r := c.do(ctx, key, &op{Op: keyproc.Op{Change: round.Identity, Identity: true}})
	if r.err != nil {
		return Record{}, r.err
	}
	return recordOf(r.value), nil
}

// Restore writes r, with its version, into the key, for restore tools. It is
// one normal round (a change like Put's): if the key is empty (never
// written, version 0) it becomes r; if it already holds exactly r nothing
// changes and Restore succeeds, so a restore interrupted half way can be
// run again; otherwise it fails with a *RestoreConflictError and changes
// nothing. r.Version must be at least 1; a tombstone has no Data.
//
// After a restore the key's versions go on from r.Version: the next Put
// writes r.Version+1, and a CompareAndSwap at an older version fails.
func (c *Client) Restore(ctx context.Context, key []byte, r Record) error {
	if err := checkKey(key); err != nil {
		return err
	}
	switch {
	case r.Version == 0:
		return invalidf("restore of key %q at version 0: a record to restore has a version of at least 1", key)
	case r.Deleted && len(r.Data) > 0:
		return invalidf("restore of key %q: a tombstone has no data, got %d bytes", key, len(r.Data))
	}
	if err := checkValue(r.Data); err != nil {
		return err
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.wg.Done()
	k := clone(key)
	want := register.Value{Version: r.Version, Data: clone(r.Data), Tombstone: r.Deleted}
	res := c.do(ctx, k, &op{Op: keyproc.Op{Change: func(cur register.Value) (register.Value, error) {
		switch {
		case cur.Version == 0:
			return want, nil
		case sameRecord(cur, want):
			return cur, nil
		}
		return cur, &RestoreConflictError{Key: k, Current: recordOf(cur), Restoring: recordOf(want)}
	}}})
	if res.err != nil {
		var p *panicError
		if errors.As(res.err, &p) {
			panic(p.v)
		}
		return res.err
	}
	return nil
}

// sameRecord compares as restore does: empty and nil data are the same.
func sameRecord(a, b register.Value) bool {
	return a.Version == b.Version && a.Tombstone == b.Tombstone && bytes.Equal(a.Data, b.Data)
}

// recordOf is the Record of a register value; it shares no memory with v.
func recordOf(v register.Value) Record {
	if v.Version == 0 {
		return Record{}
	}
	r := Record{Version: v.Version, Deleted: v.Tombstone}
	if !v.Tombstone {
		r.Data = clone(v.Data)
		if r.Data == nil {
			r.Data = []byte{}
		}
	}
	return r
}
