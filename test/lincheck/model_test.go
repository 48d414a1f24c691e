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

// TestModel checks hand-written histories: the legal ones must pass and the
// illegal ones must be rejected.
func TestModel(t *testing.T) {
	tests := []struct {
		name  string
		ops   []porcupine.Operation
		legal bool
	}{
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
	}
	if err := Visualize(ops, path, time.Minute); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Fatalf("no visualization written: %v", err)
	}
}
