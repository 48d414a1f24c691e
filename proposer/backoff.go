package proposer

import "time"

// backoff is the wait before retry n (1 for the first retry): "full jitter"
// over a window that starts at base and doubles with each retry up to limit.
// r is a uniform random number in [0, 1). Spreading retries over the whole
// window keeps competing proposers of one key from colliding again.
func backoff(n int, base, limit time.Duration, r float64) time.Duration {
	if n < 1 {
		return 0
	}
	w := limit
	if shift := n - 1; shift < 32 && base<<shift > 0 && base<<shift < limit {
		w = base << shift
	}
	return time.Duration(r * float64(w))
}
