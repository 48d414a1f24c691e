package acceptor

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/kshaka-io/kshaka/internal/pki"
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
		resp, err := srv.Accept(context.WithValue(context.Background(), authorizedKey{}, true), &req)
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

// rawCodec sends a []byte as the request's encoded message, whatever it
// holds, and receives the reply's bytes undecoded.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*[]byte) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// callRaw sends payload as r's request; a server stream is read up to its
// first message.
func (r rpc) callRaw(ctx context.Context, conn *grpc.ClientConn, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var reply []byte
	codec := grpc.ForceCodec(rawCodec{})
	if !r.serverStream {
		return conn.Invoke(ctx, r.full, &payload, &reply, codec)
	}
	s, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, r.full, codec)
	if err != nil {
		return err
	}
	if err := s.SendMsg(&payload); err != nil {
		return err
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	if err := s.RecvMsg(&reply); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// FuzzAuth attacks the authentication boundary (docs/design.md §9.1): it
// calls every RPC of every service, with fuzzed bytes as the encoded
// request, over real mutual TLS to one acceptor started once per fuzz
// process, as (0) a caller without a certificate, (1) one whose certificate
// names no role, (2) a client-role caller of the admin RPCs. Each must be
// refused, UNAUTHENTICATED for (0) and PERMISSION_DENIED otherwise, and the
// store (every record, the configuration, the sync count) must not change.
func FuzzAuth(f *testing.F) {
	s := startTLS(f, testOptions(f))
	admitTLS(f, s)
	ctx := context.Background()
	// Some state to protect.
	if _, err := kshakav1.NewAcceptorClient(s.dial(clientRole)).Accept(ctx, &kshakav1.AcceptRequest{
		Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(5, 1), val(1, "v"), nil)}}); err != nil {
		f.Fatal(err)
	}
	callers := []identity{anonymous, noRole, clientRole}
	conns := map[identity]*grpc.ClientConn{}
	for _, id := range callers {
		conns[id] = s.dial(id)
	}
	rpcs := allRPCs(f)
	var adminRPCs []rpc
	for _, r := range rpcs {
		if requiredRole(r.full) == pki.RoleAdmin {
			adminRPCs = append(adminRPCs, r)
		}
	}
	reqs := requests(s)
	for i, r := range rpcs {
		payload, err := proto.Marshal(reqs[r.full])
		if err != nil {
			f.Fatal(err)
		}
		for who := range callers {
			f.Add(uint8(i), uint8(who), payload)
		}
		f.Add(uint8(i), uint8(0), []byte{0xff, 0x01})
	}

	f.Fuzz(func(t *testing.T, which, who uint8, payload []byte) {
		id := callers[int(who)%len(callers)]
		pool, want := rpcs, codes.PermissionDenied
		switch id {
		case anonymous:
			want = codes.Unauthenticated
		case clientRole:
			pool = adminRPCs
		}
		r := pool[int(which)%len(pool)]
		before := digest(t, s.acc)
		err := r.callRaw(ctx, conns[id], payload)
		if code(err) != want {
			t.Fatalf("%s as %s: %v, want %v", r.full, id, err, want)
		}
		if digest(t, s.acc) != before {
			t.Fatalf("%s as %s was refused but changed the store", r.full, id)
		}
	})
}
