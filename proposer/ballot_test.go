package proposer_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// sentBallots records every ballot a client sends (prepare ballots, accept
// ballots and their next ballots), through a client interceptor.
type sentBallots struct {
	mu  sync.Mutex
	all map[register.Ballot][]string // ballot → the requests that carried it
}

func (s *sentBallots) dialOption() grpc.DialOption {
	s.all = map[register.Ballot][]string{}
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		s.mu.Lock()
		switch r := req.(type) {
		case *kshakav1.PrepareRequest:
			for _, it := range r.Items {
				s.add(it.Ballot, "prepare "+string(it.Key))
			}
		case *kshakav1.AcceptRequest:
			for _, it := range r.Items {
				s.add(it.Ballot, "accept "+string(it.Key))
				if it.Next != nil {
					s.add(it.Next, "next ballot of accept "+string(it.Key))
				}
			}
		}
		s.mu.Unlock()
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

func (s *sentBallots) add(b *kshakav1.Ballot, what string) {
	bal := wire.BallotFromProto(b)
	if !slices.Contains(s.all[bal], what) { // once, not once per acceptor
		s.all[bal] = append(s.all[bal], what)
	}
}

// prepareEverywhere promises ballot bal for key on every acceptor of cl, as
// another proposer would.
func prepareEverywhere(t *testing.T, cl *acceptortest.Cluster, key string, bal register.Ballot) {
	t.Helper()
	for _, addr := range cl.Addrs() {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		r, err := kshakav1.NewAcceptorClient(conn).Prepare(ctxT(t), &kshakav1.PrepareRequest{
			Epoch: cl.Config().Epoch, Items: []*kshakav1.PrepareItem{{Key: []byte(key), Ballot: wire.BallotToProto(bal)}},
		})
		conn.Close()
		if err != nil || !r.Results[0].Ok {
			t.Fatalf("prepare %s at %v on %s: %v, %v", key, bal, addr, r, err)
		}
	}
}

// TestFixedIDNeverReissuesABallot: a client's counter starts at the wall
// clock but runs ahead of it after a conflict with a ballot from a clock a
// few seconds ahead (or after an acceptor restart, through the promise
// floor). A client created next with the same fixed Config.ID, shown the
// same conflict, must not issue the ballots its predecessor issued (docs/design.md
// §2.1: a configured ID is mixed in, never used alone).
func TestFixedIDNeverReissuesABallot(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	ahead := register.Ballot{Counter: uint64(time.Now().Add(5 * time.Second).UnixMicro()), Proposer: 1}
	prepareEverywhere(t, cl, "k1", ahead)
	prepareEverywhere(t, cl, "k2", ahead)

	var sent [2]sentBallots
	for i, key := range []string{"k1", "k2"} {
		c, err := proposer.New(ctxT(t), proposer.Config{Endpoints: cl.Addrs(), ID: 42, DialOptions: []grpc.DialOption{sent[i].dialOption()}})
		if err != nil {
			t.Fatal(err)
		}
		mustPut(t, c, key, "v")
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(sent[0].all) == 0 || len(sent[1].all) == 0 {
		t.Fatalf("no ballots recorded: %v, %v", sent[0].all, sent[1].all)
	}
	for bal, first := range sent[0].all {
		if second, ok := sent[1].all[bal]; ok {
			t.Errorf("ballot %v was issued by both clients with ID 42: first in %v, then in %v", bal, first, second)
		}
	}
	// The configured ID still shows, in the top 16 bits of the proposer ID.
	for i := range sent {
		for bal := range sent[i].all {
			if bal.Proposer>>48 != 42 {
				t.Errorf("client %d sent ballot %v, whose proposer ID does not start with the configured ID 42 (0x2a)", i, bal)
			}
		}
	}
}

// TestFarAheadConflictFailsOnlyThatKey: a key holding a ballot more than
// MaxBallotLead ahead of the client's clock (here accepted by acceptors
// whose clocks run an hour ahead) fails with an error that says so, and the
// client does not follow it: its other keys go on at ordinary ballots, which
// acceptors with right clocks would take. Before ballots were bounded, one
// such conflict moved the counter of every key (docs/design.md §2.1).
func TestFarAheadConflictFailsOnlyThatKey(t *testing.T) {
	cl := acceptortest.StartClusterWith(t, 3, func(_ int, o *acceptor.Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	})
	ahead := register.Ballot{Counter: uint64(time.Now().Add(30 * time.Minute).UnixMicro()), Proposer: 1}
	prepareEverywhere(t, cl, "far", ahead)

	var sent sentBallots
	c := newClient(t, cl.Addrs(), func(cfg *proposer.Config) {
		cfg.MaxRetries = 2
		cfg.DialOptions = []grpc.DialOption{sent.dialOption()}
	})
	_, err := c.Put(ctxT(t), []byte("far"), []byte("v"))
	if !errors.Is(err, proposer.ErrNoQuorum) || !strings.Contains(err.Error(), `key "far" holds a ballot this client will not follow`) ||
		!strings.Contains(err.Error(), "ahead of this proposer's clock") {
		t.Fatalf("Put(far) = %v; want ErrNoQuorum saying the key's ballot is too far ahead of the proposer's clock", err)
	}
	t.Logf("Put(far): %v", err)
	mustPut(t, c, "near", "v")
	limit := uint64(time.Now().Add(register.DefaultMaxLead).UnixMicro())
	sent.mu.Lock()
	defer sent.mu.Unlock()
	for bal, what := range sent.all {
		if bal.Counter > limit {
			t.Errorf("the client followed the far ballot: it sent %v in %v", bal, what)
		}
	}
}
