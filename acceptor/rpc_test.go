package acceptor

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// step is one RPC of a scenario and the reply it must get. Exactly one of
// prepare, accept and read is set.
type step struct {
	prepare     []*kshakav1.PrepareItem
	wantPrepare []*kshakav1.PrepareResult
	accept      []*kshakav1.AcceptItem
	wantAccept  []*kshakav1.AcceptResult
	read        []string
	wantRead    []*kshakav1.ReadResult
}

func prep(key string, ballot *kshakav1.Ballot) *kshakav1.PrepareItem {
	return &kshakav1.PrepareItem{Key: []byte(key), Ballot: ballot}
}

func acc(key string, ballot *kshakav1.Ballot, v *kshakav1.Value, next *kshakav1.Ballot) *kshakav1.AcceptItem {
	return &kshakav1.AcceptItem{Key: []byte(key), Ballot: ballot, Value: v, Next: next}
}

// Prepare results: promised (ok) or conflict, with the accepted ballot and value.
func promised(accepted *kshakav1.Ballot, v *kshakav1.Value) *kshakav1.PrepareResult {
	return &kshakav1.PrepareResult{Ok: true, Accepted: accepted, Value: v}
}

func prepConflict(highest, accepted *kshakav1.Ballot, v *kshakav1.Value) *kshakav1.PrepareResult {
	return &kshakav1.PrepareResult{Conflict: highest, Accepted: accepted, Value: v}
}

var (
	none  = b(0, 0)
	empty = val(0, "")
	ok    = &kshakav1.AcceptResult{Ok: true}
)

// accConflict is a refusal showing the highest ballot seen and the
// accepted ballot (b(0, 0) for none).
func accConflict(highest, accepted *kshakav1.Ballot) *kshakav1.AcceptResult {
	return &kshakav1.AcceptResult{Conflict: highest, Accepted: accepted}
}

func readResult(accepted *kshakav1.Ballot, v *kshakav1.Value) *kshakav1.ReadResult {
	return &kshakav1.ReadResult{Accepted: accepted, Value: v}
}

// TestRPCScenarios runs the register rules of docs/design.md §2.2 (and the 1RTT
// promise of §2.4) through a real gRPC client against a real store.
func TestRPCScenarios(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"prepare on an empty register", []step{
			{prepare: []*kshakav1.PrepareItem{prep("x", b(1, 1))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
			{read: []string{"x"}, wantRead: []*kshakav1.ReadResult{readResult(none, empty)}},
		}},
		{"prepare, accept, read", []step{
			{prepare: []*kshakav1.PrepareItem{prep("x", b(1, 1))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
			{accept: []*kshakav1.AcceptItem{acc("x", b(1, 1), val(1, "a"), nil)}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{read: []string{"x"}, wantRead: []*kshakav1.ReadResult{readResult(b(1, 1), val(1, "a"))}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(2, 1))}, wantPrepare: []*kshakav1.PrepareResult{promised(b(1, 1), val(1, "a"))}},
		}},
		{"prepare at or below the promise conflicts and shows the promise", []step{
			{prepare: []*kshakav1.PrepareItem{prep("x", b(5, 2))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(5, 2))}, wantPrepare: []*kshakav1.PrepareResult{prepConflict(b(5, 2), none, empty)}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(5, 1))}, wantPrepare: []*kshakav1.PrepareResult{prepConflict(b(5, 2), none, empty)}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(4, 9))}, wantPrepare: []*kshakav1.PrepareResult{prepConflict(b(5, 2), none, empty)}},
			// Fast-forward past the conflict ballot.
			{prepare: []*kshakav1.PrepareItem{prep("x", b(6, 1))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
		}},
		{"accept below the promise conflicts, then a fast-forwarded round wins", []step{
			{prepare: []*kshakav1.PrepareItem{prep("x", b(3, 2))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
			{accept: []*kshakav1.AcceptItem{acc("x", b(2, 1), val(1, "old"), nil)}, wantAccept: []*kshakav1.AcceptResult{accConflict(b(3, 2), b(0, 0))}},
			{read: []string{"x"}, wantRead: []*kshakav1.ReadResult{readResult(none, empty)}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(4, 1))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
			{accept: []*kshakav1.AcceptItem{acc("x", b(4, 1), val(1, "new"), nil)}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{read: []string{"x"}, wantRead: []*kshakav1.ReadResult{readResult(b(4, 1), val(1, "new"))}},
		}},
		{"accept at the accepted ballot conflicts (b <= accepted)", []step{
			{accept: []*kshakav1.AcceptItem{acc("x", b(2, 1), val(1, "a"), nil)}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{accept: []*kshakav1.AcceptItem{acc("x", b(2, 1), val(2, "b"), nil)}, wantAccept: []*kshakav1.AcceptResult{accConflict(b(2, 1), b(2, 1))}},
			{read: []string{"x"}, wantRead: []*kshakav1.ReadResult{readResult(b(2, 1), val(1, "a"))}},
		}},
		{"accept above the promise without a prepare", []step{
			{prepare: []*kshakav1.PrepareItem{prep("x", b(1, 1))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
			{accept: []*kshakav1.AcceptItem{acc("x", b(7, 3), val(1, "a"), nil)}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(7, 3))}, wantPrepare: []*kshakav1.PrepareResult{prepConflict(b(7, 3), b(7, 3), val(1, "a"))}},
		}},
		{"1RTT: accept with next promises next", []step{
			{accept: []*kshakav1.AcceptItem{acc("x", b(1, 1), val(1, "a"), b(2, 1))}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(2, 1))}, wantPrepare: []*kshakav1.PrepareResult{prepConflict(b(2, 1), b(1, 1), val(1, "a"))}},
			{accept: []*kshakav1.AcceptItem{acc("x", b(1, 9), val(9, "late"), nil)}, wantAccept: []*kshakav1.AcceptResult{accConflict(b(2, 1), b(1, 1))}},
			{accept: []*kshakav1.AcceptItem{acc("x", b(2, 1), val(2, "b"), b(3, 1))}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{read: []string{"x"}, wantRead: []*kshakav1.ReadResult{readResult(b(2, 1), val(2, "b"))}},
		}},
		{"a zero next is no promise", []step{
			{accept: []*kshakav1.AcceptItem{acc("x", b(1, 1), val(1, "a"), none)}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{prepare: []*kshakav1.PrepareItem{prep("x", b(1, 2))}, wantPrepare: []*kshakav1.PrepareResult{promised(b(1, 1), val(1, "a"))}},
		}},
		{"tombstones round-trip", []step{
			{accept: []*kshakav1.AcceptItem{acc("x", b(1, 1), &kshakav1.Value{Version: 3, Tombstone: true}, nil)}, wantAccept: []*kshakav1.AcceptResult{ok}},
			{read: []string{"x"}, wantRead: []*kshakav1.ReadResult{readResult(b(1, 1), &kshakav1.Value{Version: 3, Tombstone: true})}},
		}},
		{"a batch answers each key in request order", []step{
			{prepare: []*kshakav1.PrepareItem{prep("b", b(5, 1))}, wantPrepare: []*kshakav1.PrepareResult{promised(none, empty)}},
			{
				prepare:     []*kshakav1.PrepareItem{prep("c", b(3, 1)), prep("b", b(3, 1)), prep("a", b(3, 1))},
				wantPrepare: []*kshakav1.PrepareResult{promised(none, empty), prepConflict(b(5, 1), none, empty), promised(none, empty)},
			},
			{
				accept:     []*kshakav1.AcceptItem{acc("c", b(3, 1), val(1, "c"), nil), acc("b", b(3, 1), val(1, "b"), nil), acc("a", b(3, 1), val(1, "a"), nil)},
				wantAccept: []*kshakav1.AcceptResult{ok, accConflict(b(5, 1), b(0, 0)), ok},
			},
			{
				read:     []string{"a", "b", "c", "d"},
				wantRead: []*kshakav1.ReadResult{readResult(b(3, 1), val(1, "a")), readResult(none, empty), readResult(b(3, 1), val(1, "c")), readResult(none, empty)},
			},
		}},
		{"an empty batch is answered", []step{
			{prepare: []*kshakav1.PrepareItem{}, wantPrepare: nil},
			{read: []string{}, wantRead: nil},
		}},
	}
	n := startAdmitted(t, testOptions(t))
	for ti, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each scenario uses its own key space.
			prefix := fmt.Sprintf("t%d/", ti)
			for si, s := range tt.steps {
				ctx := context.Background()
				switch {
				case s.prepare != nil:
					req := &kshakav1.PrepareRequest{Epoch: 1}
					for _, it := range s.prepare {
						req.Items = append(req.Items, &kshakav1.PrepareItem{Key: append([]byte(prefix), it.Key...), Ballot: it.Ballot})
					}
					resp, err := n.data.Prepare(ctx, req)
					if err != nil {
						t.Fatalf("step %d: Prepare: %v", si, err)
					}
					if !proto.Equal(resp, &kshakav1.PrepareResponse{Results: s.wantPrepare}) {
						t.Fatalf("step %d: Prepare = %v, want %v", si, resp.Results, s.wantPrepare)
					}
				case s.accept != nil:
					req := &kshakav1.AcceptRequest{Epoch: 1}
					for _, it := range s.accept {
						c := proto.Clone(it).(*kshakav1.AcceptItem)
						c.Key = append([]byte(prefix), it.Key...)
						req.Items = append(req.Items, c)
					}
					resp, err := n.data.Accept(ctx, req)
					if err != nil {
						t.Fatalf("step %d: Accept: %v", si, err)
					}
					if !proto.Equal(resp, &kshakav1.AcceptResponse{Results: s.wantAccept}) {
						t.Fatalf("step %d: Accept = %v, want %v", si, resp.Results, s.wantAccept)
					}
				default:
					req := &kshakav1.ReadRequest{Epoch: 1}
					for _, k := range s.read {
						req.Keys = append(req.Keys, []byte(prefix+k))
					}
					resp, err := n.data.Read(ctx, req)
					if err != nil {
						t.Fatalf("step %d: Read: %v", si, err)
					}
					if !proto.Equal(resp, &kshakav1.ReadResponse{Results: s.wantRead}) {
						t.Fatalf("step %d: Read = %v, want %v", si, resp.Results, s.wantRead)
					}
				}
			}
		})
	}
}
