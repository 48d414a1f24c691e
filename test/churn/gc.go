package main

import (
	"context"

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
	st, err := g.CollectTombstones(ctx, proposer.GCOptions{
		Retention:  o.retention,
		BatchSize:  o.batch,
		Install:    install,
		AdminToken: c.token,
	})
	return gcResult{scanned: int64(st.Scanned), collected: int64(st.Collected), skipped: int64(st.Skipped)}, err
}
