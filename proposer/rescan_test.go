package proposer_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// TestRescan: the rescan (docs/design.md §5) touches every key on real
// acceptors — keys that already agree on an accept quorum of S too (the
// skip rule was withdrawn), keys written while a member was down and then
// a fourth member added, keys whose first attempt is refused for a stale
// epoch, and a key nobody stores (which stays absent).
func TestRescan(t *testing.T) {
	cl := acceptortest.StartCluster(t, 4)
	cfg3, fourth := threeAndSpare(cl)

	var n counters
	c := newClient(t, cl.Addrs()[:1], func(c *proposer.Config) { c.Events = n.events() })
	ctx := ctxT(t)
	keys := func(prefix string, count int) [][]byte {
		var out [][]byte
		for i := range count {
			k := fmt.Sprintf("%s/%d", prefix, i)
			mustPut(t, c, k, k)
			out = append(out, []byte(k))
		}
		return out
	}
	all := keys("r/all", 30)

	// Every Put was acknowledged by qa = 2 of the three members at the
	// same ballot; each key is touched all the same, one round each.
	rounds := n.rounds.Load()
	st, err := c.Rescan(ctx, all...)
	if err != nil || st != (proposer.RescanStats{Touched: 30}) {
		t.Fatalf("Rescan of agreeing keys = %+v, %v; want all touched", st, err)
	}
	if got := n.rounds.Load() - rounds; got < 30 {
		t.Fatalf("30 keys rescanned in %d rounds", got)
	}

	// Keys written while a2 was down live on a0 and a1 only.
	cl.Stop(2)
	part := keys("r/part", 20)
	cl.Restart(2)

	stale := newClient(t, cl.Addrs()[:1], nil)
	joint, _, err := membership.Steps(cfg3, membership.Change{Kind: membership.Add, Member: fourth})
	if err != nil {
		t.Fatal(err)
	}
	cl.Install(joint) // S = a0..a3, qa = 3

	// Requests under the old epoch are refused: the client adopts the
	// joint configuration and touches the key.
	if st, err := stale.Rescan(ctx, all[0]); err != nil || st != (proposer.RescanStats{Touched: 1}) {
		t.Fatalf("Rescan with a stale epoch = %+v, %v; want the key touched", st, err)
	}
	if got := stale.Config().Epoch; got != joint.Epoch {
		t.Fatalf("stale client at epoch %d after Rescan, want %d", got, joint.Epoch)
	}

	r := newClient(t, cl.Addrs()[:1], nil)
	absent := []byte("r/absent")
	st, err = r.Rescan(ctx, append(part, absent)...)
	if err != nil || st != (proposer.RescanStats{Touched: 21}) {
		t.Fatalf("Rescan after adding a3 = %+v, %v; want all 21 keys touched", st, err)
	}
	for _, k := range part {
		if v := mustGet(t, r, string(k)); v.Version != 1 || string(v.Data) != string(k) {
			t.Errorf("after Rescan %s = %+v", k, v)
		}
	}
	if _, err := r.Get(ctx, absent); !errors.Is(err, proposer.ErrNotFound) {
		t.Errorf("Rescan created a key: %v", err)
	}
}

// TestRescanMemberDown: with one member of S down, every key is touched on
// the others and keeps its value.
func TestRescanMemberDown(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs()[:1], nil)
	var keys [][]byte
	for i := range 40 {
		k := fmt.Sprintf("d/%d", i)
		mustPut(t, c, k, k)
		keys = append(keys, []byte(k))
	}
	cl.Kill(2)
	st, err := c.Rescan(ctxT(t), keys...)
	if err != nil || st.Touched != len(keys) {
		t.Fatalf("Rescan with a member down = %+v, %v", st, err)
	}
	for _, k := range keys {
		if v := mustGet(t, c, string(k)); v.Version != 1 || string(v.Data) != string(k) {
			t.Errorf("after Rescan %s = %+v", k, v)
		}
	}
}

// TestRescanAboveHigherBallot: a rescan's touch ends above every ballot its
// prepare shows. a2 holds a proposal at a ballot B far above the client's
// clock (another proposer's, with an unknown outcome). a1's prepare replies
// are held back until a2 has answered, so the touch's first prepare quorum
// {a0, a1} comes in after a2's refusal showing B: the touch must not
// propose below B (it would succeed on a0 and a1 and leave B's proposal on
// a2, able to win over later writes below B); it goes again above B, and
// a2 ends up with an accepted ballot above B.
func TestRescanAboveHigherBallot(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	addrs := cl.Addrs()
	ctx := ctxT(t)
	mustPut(t, newClient(t, addrs, nil), "k", "s")

	// B: a minute ahead of the wall clock, where the client's counter starts.
	epoch := cl.Config().Epoch
	b := register.Ballot{Counter: uint64(time.Now().UnixMicro()) + 60_000_000, Proposer: 7}
	a2 := rawAcceptor(t, addrs[2])
	pr, err := a2.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: epoch, Items: []*kshakav1.PrepareItem{{Key: []byte("k"), Ballot: wire.BallotToProto(b)}}})
	if err != nil || !pr.GetResults()[0].GetOk() {
		t.Fatalf("prepare B on a2: %v, %v", pr, err)
	}
	ar, err := a2.Accept(ctx, &kshakav1.AcceptRequest{Epoch: epoch, Items: []*kshakav1.AcceptItem{{
		Key: []byte("k"), Ballot: wire.BallotToProto(b), Value: &kshakav1.Value{Version: 2, Data: []byte("y")}}}})
	if err != nil || !ar.GetResults()[0].GetOk() {
		t.Fatalf("accept B on a2: %v, %v", ar, err)
	}

	// a1 answers a prepare only once a2 has answered one.
	a2Answered := make(chan struct{})
	var once sync.Once
	hold := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoke grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if method != kshakav1.Acceptor_Prepare_FullMethodName {
			return invoke(ctx, method, req, reply, cc, opts...)
		}
		if cc.Target() == addrs[1] {
			select {
			case <-a2Answered:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err := invoke(ctx, method, req, reply, cc, opts...)
		if cc.Target() == addrs[2] {
			once.Do(func() { close(a2Answered) })
		}
		return err
	}
	var n counters
	c := newClient(t, addrs, func(c *proposer.Config) {
		c.DialOptions = []grpc.DialOption{grpc.WithUnaryInterceptor(hold)}
		c.Events = n.events()
	})
	st, err := c.Rescan(ctx, []byte("k"))
	if err != nil || st != (proposer.RescanStats{Touched: 1}) {
		t.Fatalf("Rescan = %+v, %v", st, err)
	}
	if got := n.rounds.Load(); got < 2 {
		t.Errorf("the touch took %d round(s); want the outranked attempt and one above B", got)
	}
	rr, err := a2.Read(ctx, &kshakav1.ReadRequest{Epoch: epoch, Keys: [][]byte{[]byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := wire.BallotFromProto(rr.GetResults()[0].GetAccepted()); !b.Less(got) {
		t.Fatalf("a2's accepted ballot after the rescan is %v, not above B = %v", got, b)
	}
	// Either value may be the current one (B's proposal had an unknown
	// outcome), but it is the same on every quorum from now on.
	if v := mustGet(t, c, "k"); string(v.Data) != "s" && string(v.Data) != "y" {
		t.Fatalf("k = %+v after the rescan", v)
	}
}

func rawAcceptor(t *testing.T, addr string) kshakav1.AcceptorClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return kshakav1.NewAcceptorClient(conn)
}
