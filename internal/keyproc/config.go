package keyproc

import (
	"time"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/register"
)

// Config is a machine's policy. Durations are on the driver's clock (see
// the package doc); the zero Config retries nothing and waits for no
// reply.
type Config struct {
	// MaxRetries is how many times an op is tried again after a failed
	// attempt (a definite failure, or an unknown outcome that the next
	// attempt settles). 0: no retries.
	MaxRetries int
	// MaxConflicts is how many attempts a group may lose to other
	// proposers (a quorum answered, and refused because of another ballot)
	// before it gives up; such attempts do not count against MaxRetries.
	// 0: contention counts like any failed attempt.
	MaxConflicts int
	// RequestTimeout bounds each phase of an attempt (prepare, accept).
	RequestTimeout time.Duration
	// BackoffBase and BackoffMax bound the jittered wait before a retry:
	// the first retry waits up to max(BackoffBase, Env.RoundTime()), each
	// further one up to twice as long, never more than BackoffMax.
	BackoffBase, BackoffMax time.Duration
	// RediscoverAfter is how many failed attempts in a row of one op make
	// Ready.Rediscover ask the driver to look for the configuration again.
	// 0: never.
	RediscoverAfter int
	// OneRTT makes accepts carry a 1RTT promise (docs/design.md §2.4); a successful
	// one that is Cacheable is put in the Env's cache.
	OneRTT bool
	// Lineage is how many links a value's lineage keeps (register.Stamp,
	// docs/design.md §11); 0 (or more than register.MaxLineage):
	// register.MaxLineage. The simulation keeps fewer, so that more
	// intervening proposals than the lineage holds are common.
	Lineage int
	// Broken is for negative controls only; see Broken.
	Broken Broken
}

// Broken switches off single rules of the procedure, so that the
// simulation's negative controls (test/sim, controls_test.go) break the
// code that ships instead of a copy of it. Every field is a bug; the
// checker must catch each. Production code never sets any.
type Broken struct {
	// KeepCacheOnUnknown puts a 1RTT promise back into the cache after its
	// accept ended with an unknown outcome, so its ballot may be used again
	// (docs/design.md §2.4: it is dropped on anything but success, and used once).
	KeepCacheOnUnknown bool
	// BlindRetry ignores round.Settle: an attempt after an unknown outcome
	// applies the changes again to whatever its prepare found.
	BlindRetry bool
	// IgnoreAmbiguous uses round.Settle but applies the changes again when
	// it reports the outcome ambiguous, instead of giving up.
	IgnoreAmbiguous bool
	// LineageMissIsFresh takes a lineage that does not reach back to a
	// pending proposal's version as proof that the value was not built on
	// it (round.Judge says ambiguous), and applies the changes again.
	LineageMissIsFresh bool
	// RestampIdentity gives an identity proposal (a re-proposal, a read's
	// fallback, a touch) its own ballot as the creator of the value's
	// version, instead of keeping the original proposal's identity: a
	// proposal re-accepted by someone else then looks dead to its own
	// proposer, which applies the changes again.
	RestampIdentity bool
	// StaleRefusalDefinite counts an accept refused as a whole (a stale
	// epoch, another incarnation) as a definite failure, as the batcher did
	// before round.ClassifyAccept (defect F4).
	StaleRefusalDefinite bool
	// RefusalAlwaysDefinite counts every accept refusal as a definite
	// failure, whatever the acceptor had accepted.
	RefusalAlwaysDefinite bool
	// ReadFirstReply makes a quorum read return the first member's answer.
	ReadFirstReply bool
	// ReadPrepareQuorum makes a quorum read return when qp members of P
	// agree, ignoring S (docs/design.md §2.5 says why that is not enough).
	ReadPrepareQuorum bool
	// IgnoreVersionFloor builds on what the prepare quorum reported, without
	// the configuration's GC floors (round.Floored): a key recreated after
	// its tombstone was collected starts again at version 1, so a
	// compare-and-swap on a version it had before may succeed
	// (docs/design.md §10, "versions restarting at zero").
	IgnoreVersionFloor bool
}

// Env is what the machines of one proposer share: the ballot clock, the
// 1RTT cache and the average round time, and the source of the backoff
// jitter. The library guards it with locks; a single-threaded driver uses
// Shared.
type Env interface {
	// NextBallot returns a ballot never returned before (round.Clock), or
	// an error when the clock has none left.
	NextBallot() (register.Ballot, error)
	// Observe fast-forwards the clock past a ballot a conflict showed; an
	// error says why it did not.
	Observe(b register.Ballot) error
	// CacheTake removes and returns key's 1RTT promise; CachePut stores one.
	CacheTake(key string) (round.CacheEntry, bool)
	CachePut(key string, e round.CacheEntry)
	// RoundTime is the moving average of successful attempts (Average over
	// the durations passed to NoteRoundTime); 0 before the first.
	RoundTime() time.Duration
	NoteRoundTime(d time.Duration)
	// Jitter returns a uniform random number in [0, 1).
	Jitter() float64
}

// Shared is an Env for a driver that runs every machine of a proposer on
// one goroutine (the simulation, tests).
type Shared struct {
	Clock *round.Clock
	Cache *round.Cache
	// Rand returns a uniform random number in [0, 1).
	Rand func() float64
	avg  time.Duration
}

var _ Env = (*Shared)(nil)

// NextBallot implements Env.
func (s *Shared) NextBallot() (register.Ballot, error) { return s.Clock.Next() }

// Observe implements Env.
func (s *Shared) Observe(b register.Ballot) error { return s.Clock.Observe(b) }

// CacheTake implements Env.
func (s *Shared) CacheTake(key string) (round.CacheEntry, bool) { return s.Cache.Take(key) }

// CachePut implements Env.
func (s *Shared) CachePut(key string, e round.CacheEntry) { s.Cache.Put(key, e) }

// RoundTime implements Env.
func (s *Shared) RoundTime() time.Duration { return s.avg }

// NoteRoundTime implements Env.
func (s *Shared) NoteRoundTime(d time.Duration) { s.avg = Average(s.avg, d) }

// Jitter implements Env.
func (s *Shared) Jitter() float64 { return s.Rand() }

// Average folds the duration d of a successful round into the moving
// average old (0: none yet). Retries back off in multiples of it: competing
// proposers of one key only stop colliding when their retries are spread
// over more than a round.
func Average(old, d time.Duration) time.Duration {
	if old == 0 {
		return d
	}
	return old - old/8 + d/8
}

// Backoff is the wait before retry n (1 for the first retry): "full jitter"
// over a window that starts at base and doubles with each retry up to
// limit. r is a uniform random number in [0, 1). Spreading retries over the
// whole window keeps competing proposers of one key from colliding again.
func Backoff(n int, base, limit time.Duration, r float64) time.Duration {
	if n < 1 {
		return 0
	}
	w := limit
	if shift := n - 1; shift < 32 && base<<shift > 0 && base<<shift < limit {
		w = base << shift
	}
	return time.Duration(r * float64(w))
}
