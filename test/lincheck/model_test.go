package lincheck

import (
	"math"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

const inf = math.MaxInt64

func op(client int, call, ret int64, in Input, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

func get(k string) Input           { return Input{Op: OpGet, Key: k} }
func put(k, v string) Input        { return Input{Op: OpPut, Key: k, Val: v} }
func cas(k, from, to string) Input { return Input{Op: OpCAS, Key: k, From: from, Val: to} }
func del(k string) Input           { return Input{Op: OpDelete, Key: k} }
func read(v string) Output         { return Output{Val: v} }
func swapped(ok bool) Output       { return Output{CasOK: ok} }
func status(s Status) Output       { return Output{Status: s} }

var ok = Output{}

// The version-based flavour: a cas comparing versions, outputs reporting
// them.
func casv(k string, from uint64, to string) Input {
	return Input{Op: OpCASVersion, Key: k, FromVersion: from, Val: to}
}
func readv(v string, ver uint64) Output { return Output{Val: v, Version: ver, Versioned: true} }
func wrote(ver uint64) Output           { return Output{Version: ver, Versioned: true, CasOK: true} }

// mismatch is a cas mismatch reporting the current value.
func mismatch(v string, ver uint64) Output { return Output{Val: v, Version: ver, Versioned: true} }

// TestModel checks hand-written histories: the legal ones must pass and the
// illegal ones must be rejected.
func TestModel(t *testing.T) {
	tests := []historyCase{
		{"empty key reads absent", []porcupine.Operation{
			op(0, 1, 2, get("a"), read("")),
		}, true},
		{"read after put", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(1, 3, 4, get("a"), read("x")),
		}, true},
		{"stale read after acknowledged put", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(1, 3, 4, get("a"), read("")),
		}, false},
		{"lost acknowledged write", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, put("a", "y"), ok),
			op(1, 5, 6, get("a"), read("x")),
		}, false},
		{"concurrent put may be seen or not", []porcupine.Operation{
			op(0, 1, 10, put("a", "x"), ok),
			op(1, 2, 3, get("a"), read("x")),
			op(2, 4, 5, get("a"), read("x")),
		}, true},
		{"read goes back in time", []porcupine.Operation{
			op(0, 1, 10, put("a", "x"), ok),
			op(1, 2, 3, get("a"), read("x")),
			op(2, 4, 5, get("a"), read("")),
		}, false},
		{"keys are independent", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(1, 3, 4, get("b"), read("")),
			op(1, 5, 6, get("a"), read("x")),
		}, true},
		{"delete then read absent", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, del("a"), ok),
			op(1, 5, 6, get("a"), read("")),
		}, true},
		{"read the deleted value", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, del("a"), ok),
			op(1, 5, 6, get("a"), read("x")),
		}, false},
		{"failed delete took no effect", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, del("a"), status(StatusFail)),
			op(1, 5, 6, get("a"), read("x")),
		}, true},
		{"failed put is seen", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), status(StatusFail)),
			op(1, 3, 4, get("a"), read("x")),
		}, false},
		{"unknown put seen later", []porcupine.Operation{
			op(0, 1, inf, put("a", "x"), status(StatusUnknown)),
			op(1, 3, 4, get("a"), read("")),
			op(1, 5, 6, get("a"), read("x")),
		}, true},
		{"unknown put never seen", []porcupine.Operation{
			op(0, 1, inf, put("a", "x"), status(StatusUnknown)),
			op(1, 3, 4, get("a"), read("")),
		}, true},
		{"unknown put seen then unseen", []porcupine.Operation{
			op(0, 1, inf, put("a", "x"), status(StatusUnknown)),
			op(1, 3, 4, get("a"), read("x")),
			op(1, 5, 6, get("a"), read("")),
		}, false},
		{"unknown put cannot precede its call", []porcupine.Operation{
			op(1, 1, 2, get("a"), read("x")),
			op(0, 3, inf, put("a", "x"), status(StatusUnknown)),
		}, false},
		{"unknown delete may erase", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, inf, del("a"), status(StatusUnknown)),
			op(1, 5, 6, get("a"), read("x")),
			op(1, 7, 8, get("a"), read("")),
		}, true},
		{"failed and unknown reads say nothing", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(1, 3, 4, get("a"), Output{Status: StatusFail, Val: "bogus"}),
			op(1, 5, inf, get("a"), Output{Status: StatusUnknown, Val: "bogus"}),
		}, true},
		{"cas swaps from the current value", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, cas("a", "x", "y"), swapped(true)),
			op(1, 5, 6, get("a"), read("y")),
		}, true},
		{"cas from absent", []porcupine.Operation{
			op(0, 1, 2, cas("a", "", "x"), swapped(true)),
			op(1, 3, 4, cas("a", "", "y"), swapped(false)),
			op(1, 5, 6, get("a"), read("x")),
		}, true},
		{"cas swapped from a stale value", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, put("a", "y"), ok),
			op(1, 5, 6, cas("a", "x", "z"), swapped(true)),
		}, false},
		{"cas mismatch on the current value", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(1, 3, 4, cas("a", "x", "z"), swapped(false)),
		}, false},
		{"two cas from the same value both swap", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 6, cas("a", "x", "y"), swapped(true)),
			op(1, 4, 7, cas("a", "x", "z"), swapped(true)),
		}, false},
		{"concurrent cas: one wins", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 6, cas("a", "x", "y"), swapped(true)),
			op(1, 4, 7, cas("a", "x", "z"), swapped(false)),
			op(2, 8, 9, get("a"), read("y")),
		}, true},
		{"unknown cas applies only from its expected value", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, put("a", "w"), ok),
			op(1, 5, inf, cas("a", "x", "y"), status(StatusUnknown)),
			op(2, 6, 7, get("a"), read("y")),
		}, false},
		{"unknown cas applied", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(1, 3, inf, cas("a", "x", "y"), status(StatusUnknown)),
			op(2, 6, 7, get("a"), read("y")),
		}, true},
		{"failed cas took no effect", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(1, 3, 4, cas("a", "x", "y"), status(StatusFail)),
			op(2, 6, 7, get("a"), read("y")),
		}, false},
	}
	checkAll(t, tests)
}

type historyCase struct {
	name  string
	ops   []porcupine.Operation
	legal bool
}

func checkAll(t *testing.T, tests []historyCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Check(tt.ops, time.Minute)
			want := porcupine.Illegal
			if tt.legal {
				want = porcupine.Ok
			}
			if got != want {
				t.Errorf("Check = %v, want %v", got, want)
			}
		})
	}
}

// TestModelVersions checks hand-written histories that carry versions
// (register.Value's rules), with both cas flavours. The illegal ones are
// the negative controls of the e2e suite: if the model accepted them, its
// checks would prove nothing.
func TestModelVersions(t *testing.T) {
	checkAll(t, []historyCase{
		// Legal.
		{"sequential", []porcupine.Operation{
			op(0, 1, 2, get("a"), readv("", 0)),
			op(0, 3, 4, put("a", "x"), wrote(1)),
			op(0, 5, 6, casv("a", 1, "y"), wrote(2)),
			op(0, 7, 8, casv("a", 1, "z"), mismatch("y", 2)),
			op(0, 9, 10, get("a"), readv("y", 2)),
		}, true},
		{"concurrent puts in either order", []porcupine.Operation{
			op(0, 1, 10, put("a", "x"), wrote(2)),
			op(1, 2, 9, put("a", "y"), wrote(1)),
			op(2, 11, 12, get("a"), readv("x", 2)),
		}, true},
		{"unknown write applied later", []porcupine.Operation{
			op(0, 1, inf, put("a", "x"), status(StatusUnknown)),
			op(1, 5, 6, get("a"), readv("", 0)),
			op(1, 7, 8, get("a"), readv("x", 1)),
		}, true},
		{"unknown write never applied", []porcupine.Operation{
			op(0, 1, inf, put("a", "x"), status(StatusUnknown)),
			op(1, 5, 6, put("a", "y"), wrote(1)),
			op(1, 7, 8, get("a"), readv("y", 1)),
		}, true},
		{"unknown write applied after a later acknowledged one", []porcupine.Operation{
			op(0, 1, inf, put("a", "x"), status(StatusUnknown)),
			op(1, 5, 6, put("a", "y"), wrote(1)),
			op(1, 7, 8, get("a"), readv("y", 1)),
			op(1, 9, 10, get("a"), readv("x", 2)),
		}, true},
		{"unknown version cas applied later", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(1, 3, inf, casv("a", 1, "y"), status(StatusUnknown)),
			op(2, 4, 5, get("a"), readv("x", 1)),
			op(2, 6, 7, get("a"), readv("y", 2)),
		}, true},
		{"keys are independent", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("b", "y"), wrote(1)),
		}, true},
		{"delete leaves a tombstone one version up", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, del("a"), ok),
			op(1, 5, 6, get("a"), readv("", 0)),
			op(0, 7, 8, put("a", "y"), wrote(3)),
			op(1, 9, 10, get("a"), readv("y", 3)),
		}, true},
		{"version cas from 0 on a deleted key", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, del("a"), ok),
			op(0, 5, 6, casv("a", 1, "z"), mismatch("", 0)),
			op(0, 7, 8, casv("a", 0, "y"), wrote(3)),
		}, true},
		{"delete of an absent key changes nothing", []porcupine.Operation{
			op(0, 1, 2, del("a"), ok),
			op(0, 3, 4, put("a", "x"), wrote(1)),
			op(0, 5, 6, del("a"), ok),
			op(0, 7, 8, del("a"), ok),
			op(0, 9, 10, put("a", "y"), wrote(3)),
		}, true},
		{"unknown delete takes effect later", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, inf, del("a"), status(StatusUnknown)),
			op(1, 4, 5, get("a"), readv("x", 1)),
			op(1, 6, 7, put("a", "y"), wrote(3)),
		}, true},
		{"both cas flavours on one key", []porcupine.Operation{
			op(0, 1, 2, cas("a", "", "x"), wrote(1)),
			op(0, 3, 4, casv("a", 1, "y"), wrote(2)),
			op(0, 5, 6, cas("a", "x", "z"), mismatch("y", 2)),
			op(0, 7, 8, cas("a", "y", "z"), wrote(3)),
			op(0, 9, 10, casv("a", 0, "w"), mismatch("z", 3)),
		}, true},
		{"versioned and unversioned outputs mix", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, put("a", "y"), wrote(2)),
			op(1, 5, 6, get("a"), read("y")),
			op(1, 7, 8, casv("a", 2, "z"), swapped(true)),
			op(1, 9, 10, get("a"), readv("z", 3)),
		}, true},
		{"failed version cas took no effect", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(1, 3, 4, casv("a", 1, "y"), status(StatusFail)),
			op(2, 5, 6, put("a", "z"), wrote(2)),
		}, true},

		// Illegal.
		{"lost acknowledged write", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "y"), wrote(2)),
			op(1, 5, 6, get("a"), readv("x", 1)),
		}, false},
		{"read of a value never written", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(1, 3, 4, get("a"), readv("z", 1)),
		}, false},
		{"acknowledged write then not found", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(1, 3, 4, get("a"), readv("", 0)),
		}, false},
		{"version reused", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "y"), wrote(1)),
		}, false},
		{"put skips a version", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "y"), wrote(3)),
		}, false},
		{"first put is not version 1", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(0)),
		}, false},
		{"get reads an old version of the current value", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "y"), wrote(2)),
			op(1, 5, 6, get("a"), readv("y", 1)),
		}, false},
		{"version goes backwards", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, put("a", "y"), ok),
			op(1, 5, 6, get("a"), readv("y", 2)),
			op(0, 7, 8, put("a", "z"), wrote(2)),
		}, false},
		{"version goes backwards, control", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, put("a", "y"), ok),
			op(1, 5, 6, get("a"), readv("y", 2)),
			op(0, 7, 8, put("a", "z"), wrote(3)),
		}, true},
		{"stale version cas accepted", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "y"), wrote(2)),
			op(1, 5, 6, casv("a", 1, "z"), wrote(3)),
		}, false},
		{"stale version cas accepted, no version reported", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), ok),
			op(0, 3, 4, put("a", "y"), ok),
			op(1, 5, 6, casv("a", 1, "z"), swapped(true)),
		}, false},
		{"version cas mismatch on the current version", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(1, 3, 4, casv("a", 1, "z"), swapped(false)),
		}, false},
		{"mismatch reports a stale current version", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "y"), wrote(2)),
			op(1, 5, 6, casv("a", 7, "z"), mismatch("y", 1)),
		}, false},
		{"mismatch reports a stale current value", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "y"), wrote(2)),
			op(1, 5, 6, cas("a", "x", "z"), mismatch("x", 2)),
		}, false},
		{"version cas from 0 swaps an existing key", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(1, 3, 4, casv("a", 0, "y"), wrote(2)),
		}, false},
		{"version cas matches a tombstone's version", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, del("a"), ok),
			op(1, 5, 6, casv("a", 2, "y"), swapped(true)),
		}, false},
		{"deleted key reads with the tombstone's version", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, del("a"), ok),
			op(1, 5, 6, get("a"), readv("", 2)),
		}, false},
		{"put after a delete ignores the tombstone", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, del("a"), ok),
			op(0, 5, 6, put("a", "y"), wrote(2)),
		}, false},
		{"a key created where it was absent may start above its last version (tombstone GC)", []porcupine.Operation{
			op(0, 1, 2, del("a"), ok),
			op(0, 3, 4, put("a", "x"), wrote(2)),
		}, true},
		{"a recreated key starts above its tombstone", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, del("a"), ok),
			op(0, 5, 6, put("a", "y"), wrote(9)),
			op(0, 7, 8, put("a", "z"), wrote(10)),
			op(1, 9, 10, get("a"), readv("z", 10)),
		}, true},
		{"a recreated key never reuses a version it had", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "w"), wrote(2)),
			op(0, 5, 6, del("a"), ok),
			op(0, 7, 8, put("a", "y"), wrote(2)),
		}, false},
		{"once pinned, a recreated key's versions count by one", []porcupine.Operation{
			op(0, 1, 2, del("a"), ok),
			op(0, 3, 4, put("a", "y"), wrote(9)),
			op(0, 5, 6, put("a", "z"), wrote(11)),
		}, false},
		{"a version cas on a recreated key pins its version", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, del("a"), ok),
			op(1, 5, inf, put("a", "y"), status(StatusUnknown)),
			op(0, 6, 7, casv("a", 5, "z"), swapped(true)),
			op(0, 8, 9, get("a"), readv("z", 6)),
		}, true},
		{"a version cas below a recreated key's versions cannot swap", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "w"), wrote(2)),
			op(0, 5, 6, del("a"), ok),
			op(1, 7, 8, put("a", "y"), ok),
			op(0, 9, 10, casv("a", 2, "z"), swapped(true)),
		}, false},
		{"unknown version cas applies only from its expected version", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 4, put("a", "w"), wrote(2)),
			op(1, 5, inf, casv("a", 1, "y"), status(StatusUnknown)),
			op(2, 6, 7, get("a"), readv("y", 3)),
		}, false},
		{"unknown write seen then unseen", []porcupine.Operation{
			op(0, 1, inf, put("a", "x"), status(StatusUnknown)),
			op(1, 3, 4, get("a"), readv("x", 1)),
			op(1, 5, 6, get("a"), readv("", 0)),
		}, false},
		{"two version cas from the same version both swap", []porcupine.Operation{
			op(0, 1, 2, put("a", "x"), wrote(1)),
			op(0, 3, 6, casv("a", 1, "y"), swapped(true)),
			op(1, 4, 7, casv("a", 1, "z"), swapped(true)),
		}, false},
	})
}

// TestPartitionVersioned checks that a key is checked on versions as soon
// as one of its operations carries one, and that keys without versions
// stay value registers.
func TestPartitionVersioned(t *testing.T) {
	parts := Model.Partition([]porcupine.Operation{
		op(0, 1, 2, put("b", "x"), ok),
		op(0, 3, 4, put("a", "x"), ok),
		op(0, 5, 6, get("a"), readv("x", 1)),
		op(0, 7, 8, cas("c", "", "x"), ok),
		op(0, 9, 10, casv("c", 0, "y"), status(StatusFail)),
	})
	want := map[string]bool{"a": true, "b": false, "c": true}
	if len(parts) != len(want) {
		t.Fatalf("got %d partitions, want %d", len(parts), len(want))
	}
	for _, p := range parts {
		for _, o := range p {
			in := o.Input.(Input)
			if in.unversioned == want[in.Key] {
				t.Errorf("%s: unversioned = %v, want %v", describe(o.Input, o.Output), in.unversioned, !want[in.Key])
			}
		}
	}
}

// TestRecorder records concurrent operations, one left pending, and checks
// the timestamps and statuses it hands porcupine.
func TestRecorder(t *testing.T) {
	r := NewRecorder()
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			for i := range 50 {
				v := string(rune('A'+c)) + string(rune('a'+i%26)) + string(rune('0'+i/26))
				r.Call(c, put("k", v))(ok)
			}
		})
	}
	wg.Wait()
	r.Call(8, put("k", "unknown"))(status(StatusUnknown))
	done := r.Call(9, del("k"))
	done(ok)
	done(status(StatusFail)) // ignored: only the first output counts
	r.Call(10, put("k", "pending"))
	ops := r.Operations()
	if len(ops) != 8*50+3 {
		t.Fatalf("got %d operations, want %d", len(ops), 8*50+3)
	}
	seen := map[int64]bool{}
	for _, o := range ops {
		unknown := o.Output.(Output).Status == StatusUnknown
		if unknown != (o.Return == inf) {
			t.Errorf("%v: return %d, unknown %v", o.Input, o.Return, unknown)
		}
		if o.Call >= o.Return || seen[o.Call] || seen[o.Return] {
			t.Errorf("%v: bad or repeated timestamps [%d, %d]", o.Input, o.Call, o.Return)
		}
		seen[o.Call] = true
		if !unknown {
			seen[o.Return] = true
		}
		if o.Input.(Input).Val == "pending" && !unknown {
			t.Errorf("pending call reported as %v", o.Output)
		}
	}
	if Check(ops, time.Minute) != porcupine.Ok {
		t.Errorf("a history of blind writes must be linearizable")
	}
}

// TestVisualize writes the visualization of an illegal history.
func TestVisualize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "viz.html")
	ops := []porcupine.Operation{
		op(0, 1, 2, put("a", "x"), ok),
		op(1, 3, 4, get("a"), read("")),
		op(0, 5, 6, put("b", "x"), wrote(1)),
		op(0, 7, 8, casv("b", 2, "y"), mismatch("x", 1)),
		op(1, 9, 10, get("b"), readv("y", 1)),
	}
	if err := Visualize(ops, path, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("no visualization written: %v", err)
	}
}
