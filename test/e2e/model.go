package e2e

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// OpKind is a register operation.
type OpKind int

// The operations of the workload.
const (
	OpGet OpKind = iota
	OpPut
	OpCAS
)

func (k OpKind) String() string {
	return [...]string{"get", "put", "cas"}[k]
}

// Input is what a client asked for.
type Input struct {
	Key  string
	Op   OpKind
	Data string // put, cas: the value written (unique per write)
	// Expect is the version a cas requires.
	Expect uint64
}

// Result is how an operation ended.
type Result int

// The results of an operation.
const (
	// ResultOK: the operation succeeded; Output carries the value or
	// version.
	ResultOK Result = iota
	// ResultNotFound: a get found no value.
	ResultNotFound
	// ResultMismatch: a cas found another version and did nothing.
	ResultMismatch
	// ResultUnknown: a write may or may not have taken effect, possibly
	// later (proposer.ErrUnknownOutcome, or any error the library does not
	// call definite). Its return time must be "never" in the history.
	ResultUnknown
)

// Output is what the client got back.
type Output struct {
	Result  Result
	Data    string // get: the value read
	Version uint64 // get: version read; put, cas: the new version
}

// registerState is one key's register: its value and version; version 0
// means the key does not exist.
type registerState struct {
	Data    string
	Version uint64
}

// Model is a linearizable compare-and-swap register per key, with the
// version semantics of package proposer: every applied write adds one to the
// version, and cas compares versions. A write with an unknown outcome may
// or may not have been applied, so the model is nondeterministic.
var Model = (&porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() []interface{} { return []interface{}{registerState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		return step(state.(registerState), input.(Input), output.(Output))
	},
	Equal: func(a, b interface{}) bool { return a == b },
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(Input), output.(Output)
		res := [...]string{"ok", "not found", "mismatch", "unknown"}[out.Result]
		switch in.Op {
		case OpGet:
			return fmt.Sprintf("get(%s) → %s %q v%d", in.Key, res, out.Data, out.Version)
		case OpPut:
			return fmt.Sprintf("put(%s, %q) → %s v%d", in.Key, in.Data, res, out.Version)
		default:
			return fmt.Sprintf("cas(%s, v%d, %q) → %s v%d", in.Key, in.Expect, in.Data, res, out.Version)
		}
	},
	DescribeState: func(state interface{}) string {
		s := state.(registerState)
		return fmt.Sprintf("%q v%d", s.Data, s.Version)
	},
}).ToModel()

// step returns the states the register can be in after the operation, none
// if the operation could not have returned output in state s.
func step(s registerState, in Input, out Output) []interface{} {
	next := registerState{Data: in.Data, Version: s.Version + 1}
	switch in.Op {
	case OpGet:
		switch {
		case out.Result == ResultNotFound && s.Version == 0,
			out.Result == ResultOK && s.Version != 0 && out.Version == s.Version && out.Data == s.Data:
			return []interface{}{s}
		}
		return nil
	case OpPut:
		return write(s, next, out, true)
	case OpCAS:
		if s.Version == in.Expect {
			return write(s, next, out, true)
		}
		return write(s, next, out, false)
	}
	return nil
}

// write is the step of a put or cas that applies (applies=true) or must find
// a mismatch.
func write(s, next registerState, out Output, applies bool) []interface{} {
	switch {
	case out.Result == ResultUnknown && applies:
		return []interface{}{s, next}
	case out.Result == ResultUnknown:
		return []interface{}{s}
	case out.Result == ResultOK && applies && out.Version == next.Version:
		return []interface{}{next}
	case out.Result == ResultMismatch && !applies:
		return []interface{}{s}
	}
	return nil
}
