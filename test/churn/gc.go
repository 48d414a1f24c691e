package main

import (
	"context"
	"time"

	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

type gcResult struct {
	scanned, collected, skipped int64
}

// gcPass runs one tombstone GC pass over the cluster with the library's
// entry point. Configurations are installed with Admin SetConfig on every
// member, as kshaka local's control plane does; g is a proposer of its
// own, like the operator's.
func gcPass(ctx context.Context, c *cluster, g *proposer.Client, o options) (gcResult, error) {
	install := proposer.InstallWithSetConfig(func(addr string) (kshakav1.AdminClient, func() error, error) {
		conn, err := adminclient.Dial(addr, nil, c.token)
		if err != nil {
			return nil, nil, err
		}
		return conn, conn.Close, nil
	})
	opts := proposer.GCOptions{
		Retention:  o.retention,
		BatchSize:  o.batch,
		Install:    install,
		AdminToken: c.token,
	}
	if o.gcRate > 0 {
		// The operator's spec.tombstoneGC.keysPerSecond: after each batch,
		// wait until no more than gcRate candidates per second were handled.
		start := time.Now()
		opts.Progress = func(st proposer.GCStats) {
			want := time.Duration(float64(st.Scanned) / float64(o.gcRate) * float64(time.Second))
			t := time.NewTimer(max(want-time.Since(start), 0))
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}
	st, err := g.CollectTombstones(ctx, opts)
	return gcResult{scanned: int64(st.Scanned), collected: int64(st.Collected), skipped: int64(st.Skipped)}, err
}
