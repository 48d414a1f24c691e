package sim

import (
	"math"
	"slices"

	"github.com/anishathalye/porcupine"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/test/lincheck"
)

// The history types and the model are shared with the real-process tests
// (package lincheck); the aliases keep this package's names.
type (
	status   = lincheck.Status
	kvInput  = lincheck.Input
	kvOutput = lincheck.Output
)

const (
	statusOK      = lincheck.StatusOK
	statusFail    = lincheck.StatusFail
	statusUnknown = lincheck.StatusUnknown
)

// kvModel is the compare-and-swap register per key (perf-reliability §4.4).
var kvModel = lincheck.Model

// linOp is the model's name for an operation kind.
func linOp(k opKind) lincheck.Op {
	switch k {
	case opPut:
		return lincheck.OpPut
	case opCAS:
		return lincheck.OpCAS
	case opDelete:
		return lincheck.OpDelete
	}
	return lincheck.OpGet
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
func (h *history) record(o *clientOp, st status, res round.Applied, at int64, versions bool) {
	if o.kind == opGet && st != statusOK {
		return
	}
	in := kvInput{Op: linOp(o.kind), Key: o.key, Val: o.val, From: o.from}
	out := kvOutput{Status: st}
	if st == statusOK {
		out.Val = visible(res.Value)
		out.CasOK = res.Err == nil
		if versions && o.kind != opDelete {
			out.Versioned = true
			if res.Value.Exists() {
				out.Version = res.Value.Version
			}
		}
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
