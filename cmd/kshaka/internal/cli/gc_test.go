package cli

import (
	"strings"
	"testing"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
)

// TestGC: kshaka gc collects the tombstones of a cluster without an
// operator, with the admin token; a deleted key stays absent, and versions
// go on above the old ones.
func TestGC(t *testing.T) {
	c := acceptortest.StartClusterWith(t, 3, func(_ int, o *acceptor.Options) { o.AdminToken = "s3cret" })
	ep := endpointsFlag(c)
	must(t, 0, "version 1", "put", "k", "a", ep)
	must(t, 0, "version 2", "put", "k", "b", ep)
	must(t, 0, "deleted", "delete", "k", ep)
	must(t, 0, "version 1", "put", "live", "x", ep)

	must(t, ExitUsage, "", "gc", "--retention", "0s", ep)
	must(t, ExitUsage, "", "gc", "--batch", "0", ep)
	r := must(t, ExitAccess, "", "gc", "--retention", "1ms", ep) // no token
	if !strings.Contains(r.stderr, "token") {
		t.Errorf("a missing token is not explained:\n%v", r)
	}
	must(t, 0, "scanned 1 tombstones older than 1ms; would collect up to 0", "gc", "--dry-run", "--retention", "1ms", "--admin-token", "s3cret", ep)
	must(t, 0, "collected 1; 0 live again, 0 left for a later run; 1 floor epochs", "gc", "--retention", "1ms", "--admin-token", "s3cret", "--progress", "none", ep)
	for i := range 3 {
		if n := c.Acceptor(i).Status().KeyCount; n != 1 {
			t.Fatalf("acceptor %d holds %d keys after gc, want 1", i, n)
		}
	}
	must(t, 0, "version floor 3", "status", "--admin-token", "s3cret", ep)
	must(t, ExitNotFound, "", "get", "k", ep)
	must(t, ExitVersionMismatch, "", "cas", "k", "2", "c", ep)
	must(t, 0, "version 4", "put", "k", "c", ep)
	must(t, 0, "scanned 0", "gc", "--retention", "1ms", "--admin-token", "s3cret", ep)
}
