package proposer_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/proposer"
)

// BenchmarkPut measures Put against three real acceptors on loopback (Pebble
// with fsync): one caller at a time, and 64 callers per CPU sharing one
// client (batching and combining at work). Keys cycle through a small key
// space, so after the first pass most Puts take the one-round-trip path.
func BenchmarkPut(b *testing.B) {
	cl := acceptortest.StartCluster(b, 3)
	value := make([]byte, 100)
	b.Run("sequential", func(b *testing.B) {
		c := newClient(b, cl.Addrs(), nil)
		ctx := context.Background()
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := c.Put(ctx, []byte(fmt.Sprintf("seq/%d", i%1000)), value); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel64", func(b *testing.B) {
		var n counters
		c := newClient(b, cl.Addrs(), func(c *proposer.Config) { c.Events = n.events() })
		ctx := context.Background()
		var worker atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(64)
		b.RunParallel(func(pb *testing.PB) {
			w := worker.Add(1)
			for i := 0; pb.Next(); i++ {
				if _, err := c.Put(ctx, []byte(fmt.Sprintf("par/%d/%d", w, i%10)), value); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(n.prepareItems.Load()+n.acceptItems.Load())/float64(b.N), "items/op")
	})
}

// BenchmarkTouch measures the operator's rescan path: Touch (an identity
// change with a fresh ballot: prepare + accept) over batches of 1,000 keys
// that exist, against three real acceptors. It reports keys/s.
func BenchmarkTouch(b *testing.B) {
	cl := acceptortest.StartCluster(b, 3)
	c := newClient(b, cl.Addrs(), nil)
	ctx := context.Background()
	const batch = 1000
	keys := make([][]byte, batch)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("rescan/%05d", i))
	}
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			if _, err := c.Put(ctx, keys[i], make([]byte, 100)); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	b.ResetTimer()
	for b.Loop() {
		if err := c.Touch(ctx, keys...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "keys/s")
}
