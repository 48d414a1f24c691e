package acceptor

import (
	"context"
	"fmt"
	"testing"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// BenchmarkRPC measures one acceptor's requests one at a time over gRPC on
// loopback, on real storage (t.TempDir): a synced accept is the floor under
// any write's latency (a change needs an accept quorum's fsync), and a
// prepare below the promise floor shows what the prepare phase costs
// without one.
//
//	go test -run '^$' -bench BenchmarkRPC ./acceptor
func BenchmarkRPC(tb *testing.B) {
	n := startAdmitted(tb, testOptions(tb))
	ctx := context.Background()
	value := val(1, string(make([]byte, 256)))
	tb.Run("accept", func(tb *testing.B) {
		for i := 0; tb.Loop(); i++ {
			req := &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{
				acc(fmt.Sprintf("acc/%d", i), b(uint64(i+1), 1), value, nil),
			}}
			if _, err := n.data.Accept(ctx, req); err != nil {
				tb.Fatal(err)
			}
		}
	})
	tb.Run("prepare", func(tb *testing.B) {
		// The first prepare raises the floor far above the others.
		for i := 0; tb.Loop(); i++ {
			req := &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{
				{Key: []byte(fmt.Sprintf("prep/%d", i)), Ballot: b(uint64(i+1), 1)},
			}}
			if _, err := n.data.Prepare(ctx, req); err != nil {
				tb.Fatal(err)
			}
		}
	})
}
