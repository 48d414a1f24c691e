package register

import (
	"bytes"
	"fmt"
)

// Value is what a register holds. Version counts the changes applied to the
// register since it was created; compare-and-swap compares it. Version 0 is
// the empty register (never written). A delete leaves a Tombstone with a
// higher version, so a CAS against the deleted value still fails.
type Value struct {
	Version   uint64
	Data      []byte
	Tombstone bool
}

// Exists reports whether the register holds live data: it was written and
// the last change was not a delete.
func (v Value) Exists() bool { return v.Version > 0 && !v.Tombstone }

// Equal reports whether v and o are the same value.
func (v Value) Equal(o Value) bool {
	return v.Version == o.Version && v.Tombstone == o.Tombstone && bytes.Equal(v.Data, o.Data)
}

// Clone returns a copy of v that shares no memory with it.
func (v Value) Clone() Value {
	if v.Data != nil {
		v.Data = append([]byte(nil), v.Data...)
	}
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
