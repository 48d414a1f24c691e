package lincheck

import (
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Op is the kind of a client operation.
type Op uint8

// The operations of the register.
const (
	OpGet Op = iota
	OpPut
	OpCAS
	OpDelete
	// OpCASVersion is a cas that compares the version
	// (proposer.Client.CompareAndSwap) instead of the visible value.
	OpCASVersion
)

func (o Op) String() string {
	switch o {
	case OpGet:
		return "get"
	case OpPut:
		return "put"
	case OpCAS:
		return "cas"
	case OpDelete:
		return "delete"
	case OpCASVersion:
		return "cas-version"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Status is how an operation ended.
type Status uint8

const (
	// StatusOK: the operation took effect and returned.
	StatusOK Status = iota
	// StatusFail: a definite failure, the operation took no effect.
	StatusFail
	// StatusUnknown: the operation may or may not take effect, now or later.
	// Record it with Return = math.MaxInt64.
	StatusUnknown
)

func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusFail:
		return "failed"
	case StatusUnknown:
		return "unknown"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Input is a client operation on one key.
type Input struct {
	Op  Op
	Key string
	// Val is the new value of a put or cas; unique and non-empty.
	Val string
	// From is the value an OpCAS expects, "" for "the key does not exist".
	From string
	// FromVersion is the version an OpCASVersion expects, 0 for "the key
	// does not exist" (proposer.Client.CompareAndSwap).
	FromVersion uint64

	// unversioned is set by the model's partition on every operation of a
	// key whose history carries no version (see Model).
	unversioned bool
}

// Output is what the client was told.
type Output struct {
	Status Status
	// Val is the value a get read, "" when the key does not exist; with
	// Versioned, also the current value a cas mismatch reported.
	Val string
	// CasOK reports whether a cas with StatusOK swapped (false: the
	// authoritative answer was a mismatch).
	CasOK bool
	// Versioned says that Version was reported and must be checked.
	Versioned bool
	// Version is the version a get read (0 when the key does not exist),
	// the new version a put or a swapping cas wrote, or the current version
	// a cas mismatch reported (0 when the key does not exist). A delete
	// reports no version.
	Version uint64
}

// state is one key's register (register.Value): Version counts its
// changes, Val is its data, "" when it does not exist (never written, or
// deleted: then Version is the tombstone's).
type state struct {
	Version uint64
	Val     string
}

// visibleVersion is the version clients see: 0 when the key does not
// exist (proposer's userValue).
func (s state) visibleVersion() uint64 {
	if s.Val == "" {
		return 0
	}
	return s.Version
}

// Model is a compare-and-swap register per key (partitioned by key),
// following register.Value: a put, and a cas that swaps, add one to the
// version; a delete of an existing key leaves a tombstone one version
// higher, and a delete of an absent key changes nothing. Inputs are Input,
// outputs Output. It is a porcupine.NondeterministicModel turned into a
// Model (a state is a set of registers): an unknown write steps to both
// "applied" and "not applied".
//
// A key whose history carries no version (no OpCASVersion, no Versioned
// output) is checked on its visible value alone: the version cannot be
// observed there, and leaving it out keeps porcupine's state space that of
// a value register.
var Model = (&porcupine.NondeterministicModel{
	Partition: partition,
	Init:      func() []any { return []any{state{}} },
	Step:      step,
	Hash: func(st any) uint64 {
		s := st.(state)
		h := fnv.New64a()
		h.Write([]byte(s.Val))
		return h.Sum64()*31 + s.Version
	},
	Equal:             func(a, b any) bool { return a.(state) == b.(state) },
	DescribeOperation: describe,
	DescribeState: func(st any) string {
		s := st.(state)
		if s.Val == "" {
			return fmt.Sprintf("v%d:absent", s.Version)
		}
		return fmt.Sprintf("v%d:%q", s.Version, s.Val)
	},
}).ToModel()

// partition splits a history by key, in key order (deterministic), and
// marks the operations of keys whose history carries no version.
func partition(h []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	versioned := map[string]bool{}
	var keys []string
	for _, op := range h {
		in := op.Input.(Input)
		if _, ok := byKey[in.Key]; !ok {
			keys = append(keys, in.Key)
		}
		byKey[in.Key] = append(byKey[in.Key], op)
		if in.Op == OpCASVersion || op.Output.(Output).Versioned {
			versioned[in.Key] = true
		}
	}
	slices.Sort(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		ops := byKey[k]
		for i := range ops {
			in := ops[i].Input.(Input)
			in.unversioned = !versioned[k]
			ops[i].Input = in
		}
		out = append(out, ops)
	}
	return out
}

// step returns the states the key can be in after the operation, none if
// it could not have returned output from st. An unknown write may apply or
// not; the powerset model (porcupine.NondeterministicModel) keeps both, so
// porcupine need not backtrack over every pending unknown write: a write
// that takes effect later is the same as one that applies at a later
// linearization point.
func step(st, input, output any) []any {
	s, in, out := st.(state), input.(Input), output.(Output)
	if out.Status == StatusFail {
		return []any{s}
	}
	var next state // the state if the operation changes the key
	switch in.Op {
	case OpGet:
		if out.Status == StatusOK && (out.Val != s.Val || out.Versioned && out.Version != s.visibleVersion()) {
			return nil
		}
		return []any{s}
	case OpPut:
		next = state{Version: s.Version + 1, Val: in.Val}
	case OpDelete:
		if s.Val == "" {
			return []any{s}
		}
		next = state{Version: s.Version + 1}
	case OpCAS, OpCASVersion:
		match := s.Val == in.From
		if in.Op == OpCASVersion {
			match = s.visibleVersion() == in.FromVersion
		}
		if !match {
			if out.Status == StatusOK && (out.CasOK || out.Versioned && (out.Version != s.visibleVersion() || out.Val != s.Val)) {
				return nil
			}
			return []any{s}
		}
		if out.Status == StatusOK && !out.CasOK {
			return nil
		}
		next = state{Version: s.Version + 1, Val: in.Val}
	default:
		return nil
	}
	if in.unversioned {
		next.Version = 0
	}
	switch {
	case out.Status == StatusUnknown:
		return []any{s, next}
	case out.Versioned && in.Op != OpDelete && out.Version != next.Version:
		return nil
	}
	return []any{next}
}

func describe(input, output any) string {
	in, out := input.(Input), output.(Output)
	var res string
	if out.Status != StatusOK {
		res = out.Status.String()
	}
	var ver string // the version reported, if any
	if out.Status == StatusOK && out.Versioned {
		ver = fmt.Sprintf(" v%d", out.Version)
	}
	switch in.Op {
	case OpGet:
		if res != "" {
			return fmt.Sprintf("get(%s) %s", in.Key, res)
		}
		return fmt.Sprintf("get(%s) → %q%s", in.Key, out.Val, ver)
	case OpPut:
		return fmt.Sprintf("put(%s, %q) %s%s", in.Key, in.Val, res, ver)
	case OpDelete:
		return fmt.Sprintf("delete(%s) %s", in.Key, res)
	}
	if res == "" {
		res = "ok"
		if !out.CasOK {
			res = "mismatch"
			if out.Versioned {
				ver = fmt.Sprintf(" (current %q v%d)", out.Val, out.Version)
			}
		}
	}
	from := fmt.Sprintf("%q", in.From)
	if in.Op == OpCASVersion {
		from = fmt.Sprintf("v%d", in.FromVersion)
	}
	return fmt.Sprintf("cas(%s, %s → %q) %s%s", in.Key, from, in.Val, res, ver)
}

// Check checks a history for linearizability against Model, per key. It
// returns porcupine.Unknown if timeout (0: none) ran out first.
func Check(ops []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	return porcupine.CheckOperationsTimeout(Model, ops, timeout)
}

// Visualize checks ops again with full information and writes porcupine's
// HTML visualization to path.
func Visualize(ops []porcupine.Operation, path string, timeout time.Duration) error {
	_, info := porcupine.CheckOperationsVerbose(Model, ops, timeout)
	return porcupine.VisualizePath(Model, info, path)
}
