package proposer_test

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// duplicateAcrossEpoch delivers the first Accept of key to each acceptor in
// addrs twice, with an epoch switch in between: the first delivery lands and
// its reply is lost, the acceptor then moves to the next epoch, and the
// second delivery is refused as stale. That is what a duplicated request
// looks like around a configuration change.
func duplicateAcrossEpoch(t *testing.T, cl *acceptortest.Cluster, key string, addrs ...string) grpc.UnaryClientInterceptor {
	var mu sync.Mutex
	done := map[string]bool{}
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		ar, ok := req.(*kshakav1.AcceptRequest)
		target := cc.Target()
		mu.Lock()
		dup := ok && method == kshakav1.Acceptor_Accept_FullMethodName && !done[target] &&
			len(ar.Items) == 1 && string(ar.Items[0].Key) == key && containsString(addrs, target)
		if dup {
			done[target] = true
		}
		mu.Unlock()
		if !dup {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		var lost kshakav1.AcceptResponse
		if err := invoker(ctx, method, req, &lost, cc, opts...); err != nil {
			return err
		}
		if len(lost.Results) != 1 || !lost.Results[0].Ok {
			t.Errorf("the first delivery to %s was not accepted: %v", target, &lost)
		}
		next := cl.Config()
		next.Epoch = ar.Epoch + 1
		if err := acceptortest.SetConfig(target, "", next); err != nil {
			t.Errorf("installing epoch %d on %s: %v", next.Epoch, target, err)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}

func containsString(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// An accept refused for a stale epoch does not prove that it never landed
// (a duplicate of it may have): the change below was chosen on every
// acceptor, and counting their stale refusals as definite made the client
// retry it and apply it twice.
func TestStaleRefusalOfALandedAcceptIsNotDefinite(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	addrs := cl.Addrs()
	c := newClient(t, addrs, func(cfg *proposer.Config) {
		cfg.DialOptions = append(cfg.DialOptions,
			grpc.WithChainUnaryInterceptor(duplicateAcrossEpoch(t, cl, "dup", addrs...)))
	})
	v, err := c.Change(ctxT(t), []byte("dup"), func(cur proposer.Value, _ bool) ([]byte, error) {
		return append(cur.Data, 'x'), nil
	})
	if err != nil {
		t.Fatalf("Change: %v", err)
	}
	if string(v.Data) != "x" || v.Version != 1 {
		t.Errorf("Change returned %q at version %d, want \"x\" at 1", v.Data, v.Version)
	}
	if got := mustGet(t, c, "dup"); string(got.Data) != "x" || got.Version != 1 {
		t.Errorf("Get: %q at version %d, want \"x\" at 1: the change was applied twice", got.Data, got.Version)
	}
}
