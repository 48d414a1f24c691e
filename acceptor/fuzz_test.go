package acceptor

import (
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// fuzzSeeds are requests that reach each branch of validation and handling.
func fuzzSeeds() []*kshakav1.AcceptRequest {
	return []*kshakav1.AcceptRequest{
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(1, 1), val(1, "v"), nil)}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(2, 1), val(2, "v"), b(3, 1)), acc("j", b(2, 1), val(1, ""), nil)}},
		{Epoch: 0, Items: []*kshakav1.AcceptItem{acc("k", b(1, 1), val(1, "v"), nil)}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("", b(1, 1), val(1, "v"), nil)}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(1, 1), val(1, "v"), nil), acc("k", b(1, 1), val(1, "v"), nil)}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{{Key: []byte("k"), Ballot: b(1, 1)}}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(0, 1), val(1, "v"), nil)}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(5, 1), val(1, "v"), b(5, 1))}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(5, 1), &kshakav1.Value{Version: 1, Tombstone: true, Data: []byte("x")}, nil)}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("key-too-long", b(1, 1), val(1, "v"), nil)}},
		{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(1, 1), val(1, "value-too-long-for-limit"), nil)}},
		{Epoch: 2, Items: []*kshakav1.AcceptItem{
			acc("a", b(1, 1), val(1, ""), nil), acc("b", b(1, 1), val(1, ""), nil), acc("c", b(1, 1), val(1, ""), nil),
			acc("d", b(1, 1), val(1, ""), nil), acc("e", b(1, 1), val(1, ""), nil), acc("f", b(1, 1), val(1, ""), nil),
			acc("g", b(1, 1), val(1, ""), nil), acc("h", b(1, 1), val(1, ""), nil), acc("i", b(1, 1), val(1, ""), nil),
		}},
	}
}

// FuzzAcceptRequest feeds arbitrary encoded AcceptRequests to the Accept
// handler of an admitted acceptor. It must never panic; a refusal with
// INVALID_ARGUMENT (or a stale epoch) must write nothing; an answer has one
// result per item; nothing else may happen on a healthy store.
func FuzzAcceptRequest(f *testing.F) {
	for _, req := range fuzzSeeds() {
		buf, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
	}
	opts := memOptions(vfs.NewMem())
	opts.MaxKeySize, opts.MaxValueSize, opts.MaxBatchItems = 8, 16, 8
	a, err := Open(opts)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = a.Close() })
	if _, err := a.SetConfig(membership.Stable(1, membership.Member{ID: "a", Addr: "a:1", Incarnation: a.Incarnation()})); err != nil {
		f.Fatal(err)
	}
	srv := acceptorServer{a: a}

	f.Fuzz(func(t *testing.T, buf []byte) {
		var req kshakav1.AcceptRequest
		if proto.Unmarshal(buf, &req) != nil {
			return
		}
		syncs, keys := a.SyncCount(), a.keyCount.Load()
		resp, err := srv.Accept(context.Background(), &req)
		wrote := a.SyncCount() != syncs || a.keyCount.Load() != keys
		switch code(err) {
		case codes.OK:
			if resp.StaleConfig != nil {
				if req.Epoch >= 1 || len(resp.Results) != 0 || wrote {
					t.Fatalf("stale reply %v for epoch %d (wrote %v)", resp, req.Epoch, wrote)
				}
				return
			}
			if len(resp.Results) != len(req.Items) {
				t.Fatalf("%d results for %d items", len(resp.Results), len(req.Items))
			}
			if invalid := a.core.CheckAccept(wire.AcceptItemsFromProto(req.Items), a.opts.Now()); invalid != nil {
				t.Fatalf("invalid request answered: %v", invalid)
			}
		case codes.InvalidArgument:
			if wrote {
				t.Fatalf("refused request wrote something: %v", err)
			}
		case codes.FailedPrecondition:
			// Only a request meant for another incarnation is refused so.
			if req.Incarnation == 0 || req.Incarnation == a.Incarnation() || wrote {
				t.Fatalf("refused (wrote %v) a request for incarnation %x: %v", wrote, req.Incarnation, err)
			}
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	})
}
