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
	// From is the value a cas expects, "" for "the key does not exist".
	From string
}

// Output is what the client was told.
type Output struct {
	Status Status
	// Val is the value a get read, "" when the key does not exist.
	Val string
	// CasOK reports whether a cas with StatusOK swapped (false: the
	// authoritative answer was a mismatch).
	CasOK bool
}

// Model is a compare-and-swap register per key (porcupine's kvModel
// pattern). Inputs are Input, outputs Output; the state is the visible
// value, "" when absent.
var Model = porcupine.Model{
	Partition:         partition,
	Init:              func() any { return "" },
	Step:              step,
	Hash:              func(state any) uint64 { h := fnv.New64a(); h.Write([]byte(state.(string))); return h.Sum64() },
	Equal:             func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: describe,
	DescribeState:     func(state any) string { return fmt.Sprintf("%q", state.(string)) },
}

// partition splits a history by key, in key order (deterministic).
func partition(h []porcupine.Operation) [][]porcupine.Operation {
	byKey := map[string][]porcupine.Operation{}
	var keys []string
	for _, op := range h {
		k := op.Input.(Input).Key
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], op)
	}
	slices.Sort(keys)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, byKey[k])
	}
	return out
}

func step(state, input, output any) (bool, any) {
	st, in, out := state.(string), input.(Input), output.(Output)
	if out.Status == StatusFail {
		return true, st
	}
	switch in.Op {
	case OpGet:
		if out.Status != StatusOK {
			return true, st
		}
		return out.Val == st, st
	case OpPut:
		return true, in.Val
	case OpDelete:
		return true, ""
	case OpCAS:
		if out.Status == StatusUnknown {
			if st == in.From {
				return true, in.Val
			}
			return true, st
		}
		if out.CasOK {
			return st == in.From, in.Val
		}
		return st != in.From, st
	}
	return false, st
}

func describe(input, output any) string {
	in, out := input.(Input), output.(Output)
	var res string
	if out.Status != StatusOK {
		res = out.Status.String()
	}
	switch in.Op {
	case OpGet:
		if res != "" {
			return fmt.Sprintf("get(%s) %s", in.Key, res)
		}
		return fmt.Sprintf("get(%s) → %q", in.Key, out.Val)
	case OpPut:
		return fmt.Sprintf("put(%s, %q) %s", in.Key, in.Val, res)
	case OpDelete:
		return fmt.Sprintf("delete(%s) %s", in.Key, res)
	}
	if res == "" {
		res = map[bool]string{true: "ok", false: "mismatch"}[out.CasOK]
	}
	return fmt.Sprintf("cas(%s, %q → %q) %s", in.Key, in.From, in.Val, res)
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
