package register

import (
	"bytes"
	"fmt"
)

// Value is what a register holds. Version counts the changes applied to the
// register since it was created; compare-and-swap compares it. Version 0 is
// the empty register (never written). A delete leaves a Tombstone with a
// higher version, so a CAS against the deleted value still fails.
//
// Lineage records which proposals created the recent versions (newest
// first, see Link, CreatedBy and docs/design.md §11). It is provenance, not
// content: Equal ignores it, and change functions never set it (Put and
// Delete return none; the proposer stamps it, Stamp).
type Value struct {
	Version   uint64
	Data      []byte
	Tombstone bool
	Lineage   []Link
}

// Exists reports whether the register holds live data: it was written and
// the last change was not a delete.
func (v Value) Exists() bool { return v.Version > 0 && !v.Tombstone }

// Equal reports whether v and o are the same value: the same version, data
// and tombstone flag. Lineages are not compared (two values equal in
// content may have been written by different proposals; quorum reads
// compare accepted ballots, not values).
func (v Value) Equal(o Value) bool {
	return v.Version == o.Version && v.Tombstone == o.Tombstone && bytes.Equal(v.Data, o.Data)
}

// Clone returns a copy of v that shares no memory with it.
func (v Value) Clone() Value {
	if v.Data != nil {
		v.Data = append([]byte(nil), v.Data...)
	}
	v.Lineage = cloneLinks(v.Lineage)
	return v
}

// Put returns the value that replaces v with data.
func (v Value) Put(data []byte) Value {
	return Value{Version: v.Version + 1, Data: data}
}

// Delete returns the tombstone that replaces v.
func (v Value) Delete() Value {
	return Value{Version: v.Version + 1, Tombstone: true}
}

func (v Value) String() string {
	switch {
	case v.Version == 0:
		return "v0:empty"
	case v.Tombstone:
		return fmt.Sprintf("v%d:deleted", v.Version)
	}
	return fmt.Sprintf("v%d:%q", v.Version, v.Data)
}
