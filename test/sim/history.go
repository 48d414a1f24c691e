package sim

import (
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"github.com/anishathalye/porcupine"

	"github.com/kshaka-io/kshaka/internal/round"
)

type status uint8

const (
	statusOK status = iota
	// statusFail: a definite failure, the operation took no effect.
	statusFail
	// statusUnknown: the operation may or may not take effect, now or later.
	statusUnknown
)

// kvInput is a client operation on one key.
type kvInput struct {
	Op   opKind
	Key  string
	Val  string // put, cas: new value
	From string // cas: expected value
}

// kvOutput is what the client was told.
type kvOutput struct {
	Status status
	Val    string // get: the value read
	CasOK  bool
}

type record struct {
	op     porcupine.Operation
	rounds []uint64
}

type history struct {
	recs    []record
	clients int
}

func (h *history) newClient() int {
	h.clients++
	return h.clients - 1
}

// record adds a completed operation. Reads that failed or ended unknown
// are left out: they had no effect and reported nothing.
func (h *history) record(o *clientOp, st status, res round.Applied, at int64) {
	if o.kind == opGet && st != statusOK {
		return
	}
	in := kvInput{Op: o.kind, Key: o.key, Val: o.val, From: o.from}
	out := kvOutput{Status: st}
	if st == statusOK {
		out.Val = visible(res.Value)
		out.CasOK = res.Err == nil
	}
	ret := at
	if st == statusUnknown {
		ret = math.MaxInt64
	}
	h.recs = append(h.recs, record{
		op:     porcupine.Operation{ClientId: o.clientID, Input: in, Call: o.call, Output: out, Return: ret, Metadata: at},
		rounds: o.rounds,
	})
}

// operations returns the history for porcupine. An unknown outcome whose
// proposals the ground truth shows were accepted by no acceptor cannot take
// effect: it becomes a definite failure returning when it was reported
// (perf-reliability §4.4, "prune indeterminate writes with ground truth").
func (h *history) operations(accepted map[uint64]bool, prune bool) []porcupine.Operation {
	ops := make([]porcupine.Operation, 0, len(h.recs))
	for _, r := range h.recs {
		op := r.op
		out := op.Output.(kvOutput)
		if out.Status == statusUnknown && prune && !slices.ContainsFunc(r.rounds, func(id uint64) bool { return accepted[id] }) {
			out.Status = statusFail
			op.Output = out
			op.Return = op.Metadata.(int64)
		}
		ops = append(ops, op)
	}
	return ops
}

// kvModel is a compare-and-swap register per key (porcupine's kvModel
// pattern, perf-reliability §4.4). The state is the visible value, "" when
// absent. Written values are unique, so a value read names its write.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).Key
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
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		st, in, out := state.(string), input.(kvInput), output.(kvOutput)
		switch in.Op {
		case opGet:
			return out.Val == st, st
		case opPut:
			if out.Status == statusFail {
				return true, st
			}
			return true, in.Val
		case opDelete:
			if out.Status == statusFail {
				return true, st
			}
			return true, ""
		case opCAS:
			switch out.Status {
			case statusFail:
				return true, st
			case statusUnknown:
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
	},
	Hash: func(state any) uint64 {
		h := fnv.New64a()
		h.Write([]byte(state.(string)))
		return h.Sum64()
	},
	Equal: func(a, b any) bool { return a.(string) == b.(string) },
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		var res string
		switch out.Status {
		case statusFail:
			res = "failed"
		case statusUnknown:
			res = "unknown"
		}
		switch in.Op {
		case opGet:
			return fmt.Sprintf("get(%s) → %q", in.Key, out.Val)
		case opPut:
			return fmt.Sprintf("put(%s, %q) %s", in.Key, in.Val, res)
		case opDelete:
			return fmt.Sprintf("delete(%s) %s", in.Key, res)
		}
		if res == "" {
			res = map[bool]string{true: "ok", false: "mismatch"}[out.CasOK]
		}
		return fmt.Sprintf("cas(%s, %q → %q) %s", in.Key, in.From, in.Val, res)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%q", state.(string)) },
}
