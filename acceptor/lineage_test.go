package acceptor

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/kshaka-io/kshaka/internal/wire"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// TestLineageIsStoredAndChecked: a value's lineage (docs/design.md §11) is
// stored with it, survives a restart and comes back in reads; an accept
// with a malformed lineage is refused with INVALID_ARGUMENT and nothing
// written.
func TestLineageIsStoredAndChecked(t *testing.T) {
	n := startAdmitted(t, testOptions(t))
	ctx := context.Background()
	c := wallCounter()
	good := register.Value{Version: 5, Data: []byte("x"), Lineage: []register.Link{
		{Ballot: register.Ballot{Counter: c, Proposer: 1}, Version: 5},
		{Ballot: register.Ballot{Counter: c - 10, Proposer: 2}, Version: 3},
	}}
	if r, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{
		acc("k", b(c, 1), wire.ValueToProto(good), nil),
	}}); err != nil || !r.Results[0].Ok {
		t.Fatalf("accept with a lineage: %v, %v", r, err)
	}
	n.restart()
	r, err := n.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 1, Keys: [][]byte{[]byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := wire.ValueFromProto(r.Results[0].Value); !got.Equal(good) || !slices.Equal(got.Lineage, good.Lineage) {
		t.Fatalf("read after a restart: %+v, want %+v", got, good)
	}

	bad := func(l ...register.Link) *kshakav1.Value {
		return wire.ValueToProto(register.Value{Version: 7, Data: []byte("y"), Lineage: l})
	}
	for name, v := range map[string]*kshakav1.Value{
		"top is not the version": bad(register.Link{Ballot: register.Ballot{Counter: c, Proposer: 3}, Version: 6}),
		"versions do not fall": bad(register.Link{Ballot: register.Ballot{Counter: c, Proposer: 3}, Version: 7},
			register.Link{Ballot: register.Ballot{Counter: c - 1, Proposer: 3}, Version: 7}),
		"zero ballot":     bad(register.Link{Version: 7}),
		"not whole links": {Version: 7, Data: []byte("y"), Lineage: []uint64{c, 3}},
	} {
		before, syncs := n.contents(), n.acc.SyncCount()
		_, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{
			acc("other", b(wallCounter(), 3), val(1, "fine"), nil), acc("k", b(wallCounter(), 3), v, nil),
		}})
		if code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "lineage") {
			t.Errorf("%s: error = %v, want INVALID_ARGUMENT naming the lineage", name, err)
		}
		if !maps.EqualFunc(before, n.contents(), statesEqual) || n.acc.SyncCount() != syncs {
			t.Errorf("%s: the refused request wrote records", name)
		}
	}
}
