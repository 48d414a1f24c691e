package acceptor

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

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

// BenchmarkOpenCount compares Open's pass over the records (keys and, from
// each record's header, tombstones) with a pass over the keys alone, and
// measures one scrape of the store collector, on 100,000 records of 256
// bytes, flushed to sstables.
//
//	go test -run '^$' -bench BenchmarkOpenCount ./acceptor
func BenchmarkOpenCount(tb *testing.B) {
	n := startAdmitted(tb, testOptions(tb))
	ctx := context.Background()
	value := val(1, string(make([]byte, 256)))
	const keys, batch = 100_000, 500
	for i := 0; i < keys; i += batch {
		req := &kshakav1.AcceptRequest{Epoch: 1}
		for j := i; j < i+batch; j++ {
			req.Items = append(req.Items, acc(fmt.Sprintf("key/%07d", j), b(1, 1), value, nil))
		}
		if _, err := n.data.Accept(ctx, req); err != nil {
			tb.Fatal(err)
		}
	}
	if err := n.acc.store.db.Flush(); err != nil {
		tb.Fatal(err)
	}
	tb.Run("records", func(tb *testing.B) {
		for tb.Loop() {
			if k, _, _, err := n.acc.store.countRecords(); err != nil || k != keys {
				tb.Fatalf("countRecords = %d, %v", k, err)
			}
		}
	})
	tb.Run("keys", func(tb *testing.B) {
		for tb.Loop() {
			k := 0
			if err := n.acc.store.scan(nil, func([]byte) bool { k++; return true }); err != nil || k != keys {
				tb.Fatalf("scan = %d, %v", k, err)
			}
		}
	})
	tb.Run("scrape", func(tb *testing.B) {
		c := newStoreCollector(n.acc.storeStats())
		for tb.Loop() {
			ch := make(chan prometheus.Metric, 64)
			c.Collect(ch)
			close(ch)
		}
	})
}
