package acceptor

import (
	"hash/maphash"
	"slices"
	"sync"
)

// stripes are the per-key locks: a key maps to one of a fixed set of mutexes.
// A request holds the stripes of all its keys from the read of the records,
// through the synced write, to the reply, so no request can see (and answer
// from) a record that is visible in Pebble but not yet durable.
type stripes struct {
	seed maphash.Seed
	mu   []sync.Mutex
}

func newStripes(n int) *stripes {
	return &stripes{seed: maphash.MakeSeed(), mu: make([]sync.Mutex, n)}
}

// lock locks the stripes of keys in ascending stripe order (so that two
// requests never wait for each other in a cycle) and returns the function that
// unlocks them.
func (s *stripes) lock(keys [][]byte) (unlock func()) {
	idx := make([]int, len(keys))
	for i, k := range keys {
		idx[i] = int(maphash.Bytes(s.seed, k) % uint64(len(s.mu)))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		s.mu[i].Lock()
	}
	return func() {
		for _, i := range slices.Backward(idx) {
			s.mu[i].Unlock()
		}
	}
}
