package main

import (
	"context"

	"github.com/kshaka-io/kshaka/proposer"
)

type gcResult struct {
	scanned, collected, skipped int64
}

// gcPass runs one tombstone GC pass over the cluster (filled in once the
// library's entry point exists).
func gcPass(ctx context.Context, c *cluster, p *proposer.Client, o options) (gcResult, error) {
	return gcResult{}, errNoGC
}
