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
//
// AtLeast: Version is only a lower bound. A key created where it did not
// exist may start at any version above the last one it had, since its
// tombstone may have been collected (docs/design.md §10: the proposer then
// builds on a tombstone at the configuration's version floor), and the
// history has not shown the version yet. The first version reported pins
// it; a version below the bound is a version that went backwards.
type state struct {
	Version uint64
	Val     string
	AtLeast bool
}

// visibleVersion is the version clients see: 0 when the key does not
// exist (proposer's userValue).
func (s state) visibleVersion() uint64 {
	if s.Val == "" {
		return 0
	}
	return s.Version
}

// pin returns s with its visible version v, if s can have it.
func (s state) pin(v uint64) (state, bool) {
	switch {
	case s.Val == "":
		return s, v == 0
	case s.AtLeast:
		return state{Version: v, Val: s.Val}, v >= s.Version
	}
	return s, v == s.Version
}

// written is the state after a put, or a cas that swaps, writes val on s.
func (s state) written(val string) state {
	if s.Val == "" {
		return state{Version: s.Version + 1, Val: val, AtLeast: true}
	}
	return state{Version: s.Version + 1, Val: val, AtLeast: s.AtLeast}
}

// Model is a compare-and-swap register per key (partitioned by key),
// following register.Value: a put, and a cas that swaps, add one to the
// version; a delete of an existing key leaves a tombstone one version
// higher, and a delete of an absent key changes nothing. A key created
// where it did not exist (never written, or deleted) may get any version
// above the last one it had (tombstone GC, docs/design.md §10), and live
// versions never go backwards. Inputs are Input, outputs Output. It is a
// porcupine.NondeterministicModel turned into a Model (a state is a set of
// registers): an unknown write steps to both "applied" and "not applied".
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
		n := h.Sum64()*31 + s.Version
		if s.AtLeast {
			n = ^n
		}
		return n
	},
	Equal:             func(a, b any) bool { return a.(state) == b.(state) },
	DescribeOperation: describe,
	DescribeState: func(st any) string {
		s := st.(state)
		at := ""
		if s.AtLeast {
			at = "≥"
		}
		if s.Val == "" {
			return fmt.Sprintf("v%d:absent", s.Version)
		}
		return fmt.Sprintf("v%s%d:%q", at, s.Version, s.Val)
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
	ok := out.Status == StatusOK
	var next state // the state if the operation changes the key
	switch in.Op {
	case OpGet:
		if !ok {
			return []any{s}
		}
		if out.Val != s.Val {
			return nil
		}
		if out.Versioned {
			p, fits := s.pin(out.Version)
			if !fits {
				return nil
			}
			return []any{p}
		}
		return []any{s}
	case OpPut:
		next = s.written(in.Val)
	case OpDelete:
		if s.Val == "" {
			return []any{s}
		}
		next = state{Version: s.Version + 1, AtLeast: s.AtLeast}
	case OpCAS, OpCASVersion:
		return casStep(s, in, out)
	default:
		return nil
	}
	return settle(s, next, in, out)
}

// settle is the end of a write's step: next if it applied (pinned to the
// version it reported), s too when the outcome is unknown.
func settle(s, next state, in Input, out Output) []any {
	if in.unversioned {
		next.Version, next.AtLeast = 0, false
	}
	switch {
	case out.Status == StatusUnknown:
		return []any{s, next}
	case out.Versioned && in.Op != OpDelete && !in.unversioned:
		p, fits := next.pin(out.Version)
		if !fits {
			return nil
		}
		return []any{p}
	}
	return []any{next}
}

// casStep is the step of a cas: it swaps when the key holds in.From (OpCAS)
// or is at version in.FromVersion (OpCASVersion); a version that is only a
// lower bound may be either.
func casStep(s state, in Input, out Output) []any {
	ok := out.Status == StatusOK
	match, mismatch := s.Val == in.From, s.Val != in.From
	at := s // the state a swap starts from
	if in.Op == OpCASVersion {
		switch {
		case s.Val == "" || !s.AtLeast:
			match = s.visibleVersion() == in.FromVersion
			mismatch = !match
		default:
			match, mismatch = in.FromVersion >= s.Version, true
			if match {
				at, _ = s.pin(in.FromVersion)
			}
		}
	}
	var outs []any
	reportedSwap, reportedMismatch := ok && out.CasOK, ok && !out.CasOK
	if mismatch && !reportedSwap {
		if !ok || !out.Versioned {
			outs = append(outs, s)
		} else if p, fits := s.pin(out.Version); fits && out.Val == s.Val &&
			(in.Op != OpCASVersion || out.Version != in.FromVersion) {
			outs = append(outs, p)
		}
	}
	if match && !reportedMismatch {
		outs = append(outs, settle(at, at.written(in.Val), in, out)...)
	}
	return outs
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
