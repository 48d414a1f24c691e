package e2e

import (
	"math"
	"testing"

	"github.com/anishathalye/porcupine"
)

// TestModel checks the register model on small histories, including
// negative controls: histories that lose an acknowledged write or read a
// value nobody wrote must be rejected, or the e2e checks prove nothing.
func TestModel(t *testing.T) {
	op := func(client int, call, ret int64, in Input, out Output) porcupine.Operation {
		return porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call, Return: ret}
	}
	put := func(k, d string) Input { return Input{Key: k, Op: OpPut, Data: d} }
	cas := func(k string, v uint64, d string) Input { return Input{Key: k, Op: OpCAS, Data: d, Expect: v} }
	get := Input{Key: "a", Op: OpGet}
	ok := func(v uint64) Output { return Output{Result: ResultOK, Version: v} }
	read := func(d string, v uint64) Output { return Output{Result: ResultOK, Data: d, Version: v} }
	unknown := Output{Result: ResultUnknown}
	never := int64(math.MaxInt64)

	tests := []struct {
		name    string
		history []porcupine.Operation
		want    bool
	}{
		{"sequential", []porcupine.Operation{
			op(0, 0, 1, get, Output{Result: ResultNotFound}),
			op(0, 2, 3, put("a", "x"), ok(1)),
			op(0, 4, 5, cas("a", 1, "y"), ok(2)),
			op(0, 6, 7, cas("a", 1, "z"), Output{Result: ResultMismatch}),
			op(0, 8, 9, get, read("y", 2)),
		}, true},
		{"concurrent puts in either order", []porcupine.Operation{
			op(0, 0, 10, put("a", "x"), ok(2)),
			op(1, 1, 9, put("a", "y"), ok(1)),
			op(2, 11, 12, get, read("x", 2)),
		}, true},
		{"unknown write applied later", []porcupine.Operation{
			op(0, 0, never, put("a", "x"), unknown),
			op(1, 5, 6, get, Output{Result: ResultNotFound}),
			op(1, 7, 8, get, read("x", 1)),
		}, true},
		{"unknown write never applied", []porcupine.Operation{
			op(0, 0, never, put("a", "x"), unknown),
			op(1, 5, 6, put("a", "y"), ok(1)),
			op(1, 7, 8, get, read("y", 1)),
		}, true},
		{"keys are independent", []porcupine.Operation{
			op(0, 0, 1, put("a", "x"), ok(1)),
			op(0, 2, 3, put("b", "x"), ok(1)),
		}, true},
		// Negative controls.
		{"lost acknowledged write", []porcupine.Operation{
			op(0, 0, 1, put("a", "x"), ok(1)),
			op(0, 2, 3, put("a", "y"), ok(2)),
			op(1, 4, 5, get, read("x", 1)),
		}, false},
		{"read of a value never written", []porcupine.Operation{
			op(0, 0, 1, put("a", "x"), ok(1)),
			op(1, 2, 3, get, read("z", 1)),
		}, false},
		{"acknowledged write then not found", []porcupine.Operation{
			op(0, 0, 1, put("a", "x"), ok(1)),
			op(1, 2, 3, get, Output{Result: ResultNotFound}),
		}, false},
		{"version reused", []porcupine.Operation{
			op(0, 0, 1, put("a", "x"), ok(1)),
			op(0, 2, 3, put("a", "y"), ok(1)),
		}, false},
		{"cas succeeds on a stale version", []porcupine.Operation{
			op(0, 0, 1, put("a", "x"), ok(1)),
			op(0, 2, 3, put("a", "y"), ok(2)),
			op(1, 4, 5, cas("a", 1, "z"), ok(3)),
		}, false},
		{"cas mismatch on the current version", []porcupine.Operation{
			op(0, 0, 1, put("a", "x"), ok(1)),
			op(1, 2, 3, cas("a", 1, "z"), Output{Result: ResultMismatch}),
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := porcupine.CheckOperations(Model, tt.history); got != tt.want {
				t.Errorf("linearizable = %v, want %v", got, tt.want)
			}
		})
	}
}
