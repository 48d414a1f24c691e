package acceptor

import (
	"context"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// TestBadInput checks that every limit is refused with INVALID_ARGUMENT, a
// message naming the problem, and nothing written, even when the other items
// of the batch are fine.
func TestBadInput(t *testing.T) {
	opts := testOptions(t)
	opts.MaxKeySize = 16
	opts.MaxValueSize = 32
	opts.MaxBatchItems = 4
	n := startAdmitted(t, opts)
	ctx := context.Background()

	// Some state to compare against.
	if _, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("seed", b(1, 1), val(1, "s"), nil)}}); err != nil {
		t.Fatal(err)
	}
	good := func(k string) *kshakav1.AcceptItem { return acc(k, b(5, 1), val(2, "ok"), nil) }
	goodPrep := func(k string) *kshakav1.PrepareItem { return prep(k, b(5, 1)) }
	long := strings.Repeat("k", 17)

	tests := []struct {
		name    string
		prepare []*kshakav1.PrepareItem
		accept  []*kshakav1.AcceptItem
		read    [][]byte
		msg     string
	}{
		{"prepare: empty key", []*kshakav1.PrepareItem{goodPrep("a"), prep("", b(5, 1))}, nil, nil, "item 1: key is empty"},
		{"prepare: key over the limit", []*kshakav1.PrepareItem{prep(long, b(5, 1))}, nil, nil, "17 bytes, more than the limit of 16"},
		{"prepare: missing ballot", []*kshakav1.PrepareItem{goodPrep("a"), {Key: []byte("b")}}, nil, nil, "item 1: ballot"},
		{"prepare: zero ballot", []*kshakav1.PrepareItem{prep("a", b(0, 0))}, nil, nil, "ballot 0.0 is missing or invalid"},
		{"prepare: proposer 0", []*kshakav1.PrepareItem{prep("a", b(3, 0))}, nil, nil, "missing or invalid"},
		{"prepare: counter 0", []*kshakav1.PrepareItem{prep("a", b(0, 3))}, nil, nil, "missing or invalid"},
		{"prepare: counter too far ahead", []*kshakav1.PrepareItem{goodPrep("a"), prep("b", b(math.MaxUint64, 1))}, nil, nil,
			"item 1: ballot 18446744073709551615.1: counter 18446744073709551615 is 1.84e+13 s ahead of this acceptor's clock"},
		{"prepare: duplicate keys", []*kshakav1.PrepareItem{goodPrep("a"), goodPrep("b"), goodPrep("a")}, nil, nil, `item 2: key "a" repeats item 0`},
		{"prepare: too many items", []*kshakav1.PrepareItem{goodPrep("a"), goodPrep("b"), goodPrep("c"), goodPrep("d"), goodPrep("e")}, nil, nil, "5 items, more than the limit of 4"},
		{"accept: empty key", nil, []*kshakav1.AcceptItem{good("a"), acc("", b(5, 1), val(1, "x"), nil)}, nil, "key is empty"},
		{"accept: key over the limit", nil, []*kshakav1.AcceptItem{good(long)}, nil, "more than the limit of 16"},
		{"accept: value over the limit", nil, []*kshakav1.AcceptItem{good("a"), acc("b", b(5, 1), val(1, strings.Repeat("v", 33)), nil)}, nil, "value is 33 bytes, more than the limit of 32"},
		{"accept: missing value", nil, []*kshakav1.AcceptItem{good("a"), {Key: []byte("b"), Ballot: b(5, 1)}}, nil, "item 1: value is missing"},
		{"accept: missing ballot", nil, []*kshakav1.AcceptItem{{Key: []byte("b"), Value: val(1, "x")}}, nil, "ballot 0.0 is missing"},
		{"accept: proposer 0", nil, []*kshakav1.AcceptItem{acc("a", b(5, 0), val(1, "x"), nil)}, nil, "missing or invalid"},
		{"accept: next equal to ballot", nil, []*kshakav1.AcceptItem{acc("a", b(5, 1), val(1, "x"), b(5, 1))}, nil, "next ballot 5.1 must be higher than ballot 5.1"},
		{"accept: next below ballot", nil, []*kshakav1.AcceptItem{acc("a", b(5, 1), val(1, "x"), b(4, 9))}, nil, "must be higher"},
		{"accept: next with proposer 0", nil, []*kshakav1.AcceptItem{acc("a", b(5, 1), val(1, "x"), b(6, 0))}, nil, "next ballot 6.0 is missing or invalid"},
		{"accept: counter too far ahead", nil, []*kshakav1.AcceptItem{good("a"), acc("b", b(math.MaxUint64, 1), val(1, "x"), nil)}, nil,
			"item 1: ballot 18446744073709551615.1: counter 18446744073709551615 is 1.84e+13 s ahead"},
		{"accept: next too far ahead", nil, []*kshakav1.AcceptItem{acc("a", b(5, 1), val(1, "x"), b(math.MaxUint64, 1))}, nil,
			"item 0: next ballot 18446744073709551615.1: counter 18446744073709551615 is 1.84e+13 s ahead of this acceptor's clock"},
		{"accept: tombstone with data", nil, []*kshakav1.AcceptItem{acc("a", b(5, 1), &kshakav1.Value{Version: 2, Tombstone: true, Data: []byte("x")}, nil)}, nil, "tombstone"},
		{"accept: duplicate keys", nil, []*kshakav1.AcceptItem{good("a"), good("a")}, nil, "repeats"},
		{"accept: too many items", nil, []*kshakav1.AcceptItem{good("a"), good("b"), good("c"), good("d"), good("e")}, nil, "more than the limit of 4"},
		{"read: empty key", nil, nil, [][]byte{[]byte("a"), {}}, "item 1: key is empty"},
		{"read: key over the limit", nil, nil, [][]byte{[]byte(long)}, "more than the limit"},
		{"read: duplicate keys", nil, nil, [][]byte{[]byte("a"), []byte("a")}, "repeats"},
		{"read: too many keys", nil, nil, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}, "more than the limit of 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, syncs := n.contents(), n.acc.SyncCount()
			var err error
			switch {
			case tt.prepare != nil:
				_, err = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: tt.prepare})
			case tt.accept != nil:
				_, err = n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: tt.accept})
			default:
				_, err = n.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 1, Keys: tt.read})
			}
			wantCode(t, err, codes.InvalidArgument)
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not mention %q", err, tt.msg)
			}
			if !maps.EqualFunc(before, n.contents(), statesEqual) || n.acc.SyncCount() != syncs {
				t.Error("a refused request wrote something")
			}
		})
	}

	t.Run("every problem of a batch is listed, up to a bound", func(t *testing.T) {
		items := []*kshakav1.PrepareItem{prep("", b(1, 1)), prep("a", b(0, 1)), prep(long, b(1, 1))}
		_, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: items})
		for _, m := range []string{"item 0: key is empty", "item 1: ballot", "item 2: key is 17 bytes"} {
			if !strings.Contains(err.Error(), m) {
				t.Errorf("error %q does not mention %q", err, m)
			}
		}
	})
	t.Run("limits at the boundary are accepted", func(t *testing.T) {
		items := []*kshakav1.AcceptItem{
			acc(strings.Repeat("k", 16), b(9, 1), val(1, strings.Repeat("v", 32)), nil),
			acc("x", b(9, 1), val(1, ""), nil),
			acc("y", b(9, 1), val(0, ""), nil),
			acc("z", b(9, 1), &kshakav1.Value{Version: 4, Tombstone: true}, nil),
		}
		r, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: items})
		if err != nil || len(r.Results) != 4 {
			t.Fatalf("Accept = %v, %v", r, err)
		}
	})
}

func statesEqual(a, b register.State) bool {
	return a.Promise == b.Promise && a.Accepted == b.Accepted && a.Value.Equal(b.Value) && slices.Equal(a.Value.Lineage, b.Value.Lineage)
}
