package localkube

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

// StartT starts an environment for a test in t.TempDir() unless cfg.Dir is
// set, and stops it when the test ends. A test that needs it never skips:
// when the Kubernetes binaries are missing it fails with the command that
// builds them. Unless cfg.PodAddresses is set, pods get addresses from a
// random 127.X.Y.0/24 range so that concurrent tests do not collide.
func StartT(t testing.TB, cfg Config) *Cluster {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.PodAddresses == "" {
		cfg.PodAddresses = RandomPodAddresses()
	}
	if cfg.Events.Progress == nil {
		cfg.Events.Progress = func(msg string) { t.Logf("localkube: %s", msg) }
	}
	c, err := Start(context.Background(), cfg)
	if errors.Is(err, ErrMissingBinaries) {
		t.Fatalf("%v\nBuild them with: make kube-binaries", err)
	}
	if err != nil {
		t.Fatalf("localkube: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("localkube stop: %v", err)
		}
	})
	return c
}

// RandomPodAddresses returns a range of 254 loopback addresses in
// 127.100.0.0-127.199.255.255, away from the default range.
func RandomPodAddresses() string {
	a, b := 100+rand.IntN(100), rand.IntN(256)
	return fmt.Sprintf("127.%d.%d.1-127.%d.%d.254", a, b, a, b)
}
