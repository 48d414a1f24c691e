package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/change"
	"github.com/kshaka-io/kshaka/test/lincheck"
)

// BrokenRead selects a wrong quorum-read rule for negative control 5.
type BrokenRead int

const (
	// ReadCorrect uses round.Read: qp of P and qa of S agree (docs/design.md §2.5).
	ReadCorrect BrokenRead = iota
	// ReadFirstReply returns the first acceptor's answer.
	ReadFirstReply
	// ReadPrepareQuorum returns when qp members of P agree, ignoring S.
	ReadPrepareQuorum
)

// Faults break the driver on purpose; each is a negative control the
// checker must catch. None of them touches the rules in register,
// membership or round; VolatilePromises is a documented switch of the
// acceptor core (internal/acceptcore) itself. The proposer's faults flip
// one rule each of the library's own machine (keyproc.Broken), so the
// controls break the code that ships.
type Faults struct {
	// QuorumOfOne runs three acceptors with qp = qa = 1 (control 1).
	QuorumOfOne bool
	// Operator are the negative controls of the operator's transition
	// machine (change.Controls): SkipRescan goes from the joint to the
	// final configuration without the rescan (control 2); MajorityFence
	// goes on when a majority, not all, of the members acknowledged an
	// epoch (control 3); SkipBelowAcceptQuorum lets the rescan skip a key
	// whose accepted ballot agrees on qa − 1 members of the joint accept
	// set (control 9); RescanSkip brings back the withdrawn skip rule
	// (skipRule; qa members, control 10, caught by SurvivingBallot);
	// IgnoreRolledBack lets a volume restored from an older copy keep
	// serving (control 13, caught by RolledBack).
	Operator change.Controls
	// KeepCacheOnUnknown puts a used 1RTT entry back after an accept
	// with an unknown outcome, so its ballot is used again (control 4).
	KeepCacheOnUnknown bool
	// BrokenRead replaces the quorum-read rule (control 5).
	BrokenRead BrokenRead
	// BlindRetry settles an attempt that ended Unknown by re-applying its
	// changes to whatever the next prepare found, ignoring round.Settle
	// (control 6).
	BlindRetry bool
	// IgnoreAmbiguous settles with round.Settle but re-applies the changes
	// when it reports the outcome ambiguous (control 7): the derivation
	// rule is what keeps it exactly once.
	IgnoreAmbiguous bool
	// VolatilePromises sets the acceptor core's negative-control switch
	// (acceptcore.Options.VolatilePromises): no prepare is synced and a
	// restart forgets the floor, so a crash may lose a promise and the
	// restarted acceptor accepts below it (control 8). Unlike the other
	// faults it breaks the acceptor's shared core, through a switch
	// package acceptor never sets, not a driver.
	VolatilePromises bool
	// StaleRefusalDefinite counts an accept refused for a stale epoch or
	// as not admitted as a definite failure, as proposer/batch.go did
	// before it used round.ClassifyAccept (control 11, defect F4): a
	// duplicate of an accept that landed is then reported as failed.
	StaleRefusalDefinite bool
	// RefusalAlwaysDefinite counts every accept refusal as a definite
	// failure, whatever the acceptor's accepted ballot (control 12).
	RefusalAlwaysDefinite bool
	// The tombstone GC's negative controls (docs/design.md §10), each a
	// switch of the shipping code. GCWithoutFloorEpoch collects without
	// installing the epoch that raises the floors (gc.Controls
	// .SkipFloorEpoch, with the acceptor core's IgnoreCollectFloors so that
	// the acceptors go along). CollectPromised removes a tombstone while a
	// promise above the GC's ballot is outstanding (the core's
	// IgnoreCollectPromise). VersionsFromZero builds on what the prepare
	// quorum reported, without the version floor (keyproc.Broken
	// .IgnoreVersionFloor): a recreated key starts again at version 1.
	GCWithoutFloorEpoch, CollectPromised, VersionsFromZero bool
	// LineageMissIsFresh re-applies the changes of a pending proposal
	// whose version the newest value's lineage does not reach back to
	// (keyproc.Broken; control 17).
	LineageMissIsFresh bool
	// RestampIdentity gives a re-proposal a new identity in the lineage
	// (keyproc.Broken; control 18).
	RestampIdentity bool
}

// NetFaults are the network's misbehaviours; probabilities per message.
type NetFaults struct {
	RequestLoss, ReplyLoss float64
	Duplicate              float64
	// LongDelay is the chance of a delay between MaxDelay and
	// MaxLongDelay ticks instead of 1..MaxDelay.
	LongDelay              float64
	MaxDelay, MaxLongDelay int64
	// MaxFsync is the longest time between applying a request and
	// sending the reply; a crash in between loses the reply only.
	MaxFsync int64
	// NoAcceptDuplicates never duplicates accept requests.
	NoAcceptDuplicates bool
}

// Nemesis is the fault schedule: one action every Every ticks on average,
// picked with the given weights.
type Nemesis struct {
	Every                                  int64
	Crash, Partition, OneWay, OperatorCut  float64
	Pause, OperatorCrash, ProposerCrash    float64
	DiskLoss, SlowLink, Straddle           float64
	MinDown, MaxDown, MinWindow, MaxWindow int64
}

// Options describe one run. Everything not set by the caller is drawn
// from the seed by NewOptions.
type Options struct {
	Seed uint64

	Acceptors              int // initial members
	MinMembers, MaxMembers int
	Proposers, Clients     int // clients per proposer
	OpsPerClient, Keys     int

	// Duration is the time clients issue operations and faults happen;
	// Drain is the quiet time after it for operations to finish.
	Duration, Drain int64
	Timeout         int64 // per round phase (the library's RequestTimeout)
	Backoff         int64 // the longest wait before a retry (the library's backoff limit)
	OperatorTick    int64
	// InstallJitter is extra random delay on the operator's installs, so
	// that members switch epochs at different moments.
	InstallJitter int64
	// OperatorTimeout is the rescan's per-phase timeout (default Timeout).
	OperatorTimeout int64
	// StraddleChanges starts a straddle fault (see the nemesis) on a
	// member of the prepare set each time the operator installs a joint
	// configuration.
	StraddleChanges bool
	Think           int64 // max pause between a client's operations
	ChangeEvery     int64 // mean time between membership changes; 0 = none
	// GCEvery is the mean time between the operator's tombstone GC runs
	// (membership/gc, one batch of every key); 0 = none. GC and membership
	// changes are serialized, as the operator does.
	GCEvery int64
	// Versions records the versions clients see (gets, puts, cas) in the
	// history, so the checker sees versions go backwards (the GC runs set
	// it).
	Versions bool

	// MaxTries is how many attempts a change gets (the library's
	// MaxRetries + 1); CacheSize bounds the 1RTT cache, used with OneRTT.
	MaxTries, CacheSize int
	// MaxConflicts is how many attempts lost to other proposers a change
	// may have besides its MaxTries (keyproc.Config.MaxConflicts).
	MaxConflicts        int
	OneRTT, QuorumReads bool
	// Lineage is how many links a value's lineage keeps (keyproc.Config;
	// 0: register.MaxLineage). Short lineages make more intervening
	// proposals than the lineage holds common.
	Lineage int
	// HotKeys, when set, sends four operations in five to the first
	// HotKeys keys; the other keys stay mostly idle.
	HotKeys int
	// PromiseFloorStep is the acceptors' promise floor step
	// (acceptcore.Options.PromiseFloorStep): a prepare below the durable
	// floor is not synced, and a crash loses it with probability
	// LoseUnsynced; a prepare at or above the floor raises it past its
	// counter by this step, synced. 0 raises it to the counter itself.
	PromiseFloorStep uint64
	LoseUnsynced     float64

	Net     NetFaults
	Nemesis Nemesis
	Faults  Faults

	// Scenario, when set, scripts the run instead of the random workload,
	// nemesis and changes (see scenario.go).
	Scenario func(w *world)

	// Log, when set, receives every traced event.
	Log func(now int64, what string, nums []uint64)
}

// NewOptions draws a run's shape and fault rates from the seed, so that
// the budget of seeds covers calm and stormy runs, small and large
// clusters.
func NewOptions(seed uint64, f Faults) Options {
	r := rand.New(rand.NewPCG(seed, 0x6b736861))
	pick := func(xs ...float64) float64 { return xs[r.IntN(len(xs))] }
	o := Options{
		Seed:         seed,
		Acceptors:    3 + r.IntN(3),
		MinMembers:   3,
		MaxMembers:   5,
		Proposers:    2 + r.IntN(2),
		Clients:      2 + r.IntN(2),
		OpsPerClient: 12 + r.IntN(10),
		Keys:         1 + r.IntN(3),
		Duration:     2500,
		Drain:        3000,
		Timeout:      60,
		Backoff:      30,
		OperatorTick: 10,
		Think:        int64(5 + r.IntN(60)),
		ChangeEvery:  int64(pick(0, 150, 300, 600)),
		MaxTries:     5,
		MaxConflicts: 50,
		CacheSize:    16,
	}
	// Drawn and unused, so that every seed keeps its shape: it bounded how
	// many changes the simulated proposer's own copy of the policy combined
	// (the library's machine combines every queued change).
	_ = r.IntN(4)
	o.OneRTT = r.IntN(4) != 0
	o.QuorumReads = r.IntN(4) != 0
	// Drawn and unused, so that every seed keeps its shape: it chose
	// whether the rescan used the withdrawn skip rule.
	_ = r.IntN(4)
	o.Net = NetFaults{
		RequestLoss:  pick(0, 0.02, 0.05, 0.1),
		ReplyLoss:    pick(0, 0.02, 0.05, 0.1),
		Duplicate:    pick(0, 0.02, 0.05),
		LongDelay:    pick(0, 0.01, 0.03),
		MaxDelay:     int64(2 + r.IntN(8)),
		MaxLongDelay: int64(pick(50, 150, 400)),
		MaxFsync:     int64(r.IntN(3)),
	}
	o.Nemesis = Nemesis{
		Every:         int64(pick(60, 120, 250, 100000)),
		Crash:         1,
		Partition:     1,
		OneWay:        1,
		OperatorCut:   1,
		Pause:         1,
		OperatorCrash: 1,
		ProposerCrash: 0.3,
		DiskLoss:      pick(0, 0.3, 1),
		SlowLink:      1,
		MinDown:       20,
		MaxDown:       300,
		MinWindow:     50,
		MaxWindow:     400,
	}
	o.Faults = f
	switch r.IntN(6) {
	case 0, 1:
		o.membershipStorm(r)
	case 2:
		o.fenceStraddle(r)
	}
	o.Acceptors = min(max(o.Acceptors, o.MinMembers), o.MaxMembers)
	// Drawn last so that the fields above keep their values per seed. The
	// first is drawn and unused: it chose whether the simulated proposer
	// settled unknown outcomes (the library's machine always does).
	_ = r.IntN(4)
	o.PromiseFloorStep = uint64(pick(0, 1, 2, 5, 20))
	o.LoseUnsynced = pick(0.5, 1)
	// From the seed, not the stream, so that every seed keeps its shape.
	o.Lineage = []int{1, 2, 3, 0}[seed%4]
	if f.QuorumOfOne {
		o.Acceptors = 3
		o.ChangeEvery = 0
	}
	return o
}

// membershipStorm is the profile aimed at the membership procedure:
// frequent changes, many mostly idle keys (a key nobody touches between two
// changes is where a lost value stays visible), requests that straddle an
// epoch switch (long delays), and acceptors the operator cannot reach.
func (o *Options) membershipStorm(r *rand.Rand) {
	o.Keys = 4 + r.IntN(5)
	o.ChangeEvery = int64(60 + r.IntN(100))
	o.Net.LongDelay = 0.05 + 0.1*r.Float64()
	o.Net.MaxLongDelay = int64(150 + r.IntN(300))
	o.Nemesis.Every = int64(40 + r.IntN(80))
	o.Nemesis.OperatorCut = 4
	o.Nemesis.Pause = 2
	o.Nemesis.DiskLoss = float64(r.IntN(2))
	o.Nemesis.SlowLink = 2
	o.Nemesis.Straddle = 4
	o.Think = int64(20 + r.IntN(80))
	o.Timeout = int64(100 + r.IntN(200))
}

// fenceStraddle is the profile shaped after the explorer's counterexample
// to a majority fence: an old-epoch write whose accepts land on one member
// just before it switches and on a lagging member after the rescan passed
// its key, then a removal whose rescan prepares on the other members. It
// needs members that switch at different moments (install jitter), one
// that lags, slow links to it, mostly idle keys and frequent changes.
func (o *Options) fenceStraddle(r *rand.Rand) {
	o.Acceptors = 3 + r.IntN(2)
	o.MaxMembers = 4
	o.Keys = 8 + r.IntN(10)
	o.Clients = 1 + r.IntN(2)
	o.ChangeEvery = int64(20 + r.IntN(60))
	o.Timeout = int64(400 + r.IntN(400))
	o.OperatorTimeout = 30
	o.Think = int64(10 + r.IntN(80))
	o.StraddleChanges = true
	o.InstallJitter = int64(5 + r.IntN(30))
	o.OneRTT = false
	o.Net.RequestLoss, o.Net.ReplyLoss = 0.02, 0.02
	o.Net.LongDelay = 0
	o.Nemesis = Nemesis{
		Every:    int64(60 + r.IntN(60)),
		SlowLink: 1, Crash: 1, DiskLoss: float64(r.IntN(2)),
		MinDown: 20, MaxDown: 200, MinWindow: 50, MaxWindow: 300,
	}
}

// Stats count what a run did.
type Stats struct {
	Ops, Unknown, Failed, Pruned                int
	Lost, Cut, NotAdmitted                      int
	FastWrites, QuorumReads, ReadFallbacks      int
	Retries, Changes, RescanSkips, RescanWrites int
	DiskLosses, OperatorCrashes                 int
	// AcceptsAfterFence counts acceptances of a request whose epoch is
	// below one the operator had declared fenced: docs/design.md §3 says there
	// are none. LateAcked counts acknowledged writes among them.
	AcceptsAfterFence, LateAcked int
	// GC counts the tombstone GC's batches, GCCollected the keys removed
	// from every member, GCRemoved the records removed (per member).
	GC, GCCollected, GCRemoved int
	// SettleRetries counts attempts that ended Unknown (the next attempt
	// settles them); Settled counts operations answered ok by an attempt
	// that settled earlier ones, SettledOwn those of them finished by
	// re-proposing their own proposal; SettleAmbiguous counts the
	// attempts whose settling was ambiguous (they freeze the key).
	SettleRetries, Settled, SettledOwn, SettleAmbiguous int
	// Sealed counts unknown outcomes answered after a freeze
	// (keyproc.Answer.Sealed).
	Sealed int
}

// Result is one run's history and trace.
type Result struct {
	Seed       uint64
	TraceHash  uint64
	Operations []porcupine.Operation
	Stats      Stats
	// FinalEpoch is the operator's configuration epoch at the end.
	FinalEpoch uint64
}

// Run simulates one seed.
func Run(opts Options) *Result {
	w := &world{
		opts:           opts,
		rng:            rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		trace:          newTraceHash(),
		byName:         map[string]*acceptor{},
		hist:           &history{},
		acceptedRounds: map[uint64]bool{},
		lateRounds:     map[uint64]bool{},
		installDelay:   map[string]int64{},
	}
	for i := 0; i < opts.Keys; i++ {
		w.keys = append(w.keys, fmt.Sprintf("k%d", i))
	}
	var members []membership.Member
	for i := 0; i < opts.Acceptors; i++ {
		a := w.addAcceptor()
		members = append(members, membership.Member{ID: a.name, Addr: a.name, Incarnation: a.incarnation})
	}
	cfg := membership.Stable(1, members...)
	if opts.Faults.QuorumOfOne {
		cfg.PrepareQuorum, cfg.AcceptQuorum = 1, 1
	}
	for _, a := range w.acceptors {
		c := cfg.Clone()
		a.cfg = &c
	}
	w.op = newOperator(w, cfg)
	for i := 0; i < opts.Proposers; i++ {
		p := newProposer(w, fmt.Sprintf("p%d", i+1), cfg)
		for j := 0; j < opts.Clients; j++ {
			p.clients = append(p.clients, &client{p: p, id: w.hist.newClient(), n: j, left: opts.OpsPerClient, seen: map[string]string{}})
		}
		w.proposers = append(w.proposers, p)
	}
	if !opts.Faults.QuorumOfOne {
		w.op.schedule()
	}
	if opts.Scenario != nil {
		opts.Scenario(w)
	} else {
		for _, p := range w.proposers {
			for _, cl := range p.clients {
				w.scheduleClient(cl)
			}
		}
		if opts.ChangeEvery > 0 {
			w.after(w.between(opts.ChangeEvery/2, opts.ChangeEvery*3/2), w.changes)
		}
		w.after(w.between(opts.Nemesis.Every/2, opts.Nemesis.Every*3/2), w.nemesis)
	}
	w.after(opts.Duration, w.heal)
	w.after(opts.Duration+opts.Drain/2, w.audit)
	w.run(opts.Duration + opts.Drain)
	w.finish()
	return &Result{
		Seed:       opts.Seed,
		TraceHash:  w.trace.Sum64(),
		Operations: w.hist.operations(w.acceptedRounds, true),
		Stats:      w.stats,
		FinalEpoch: w.op.epoch(),
	}
}

func (w *world) addAcceptor() *acceptor {
	a := newAcceptor(w, fmt.Sprintf("a%d", len(w.acceptors)+1))
	w.acceptors = append(w.acceptors, a)
	w.byName[a.name] = a
	return a
}

func (w *world) nextStamp() int64 {
	w.stamp++
	return w.stamp
}

// scheduleClient lets a client issue its next operation after a pause.
func (w *world) scheduleClient(cl *client) {
	if cl.left <= 0 || cl.busy || !cl.p.up {
		return
	}
	cl.gen++
	gen := cl.gen
	w.after(w.between(0, w.opts.Think), func() {
		if cl.gen != gen || cl.busy || !cl.p.up || w.now >= w.opts.Duration {
			return
		}
		w.issue(cl)
	})
}

func (w *world) issue(cl *client) {
	p := cl.p
	cl.left--
	cl.busy = true
	key := w.keys[w.rng.IntN(len(w.keys))]
	if w.opts.HotKeys > 0 && w.rng.IntN(5) != 0 {
		key = w.keys[w.rng.IntN(min(w.opts.HotKeys, len(w.keys)))]
	}
	o := &clientOp{cl: cl, clientID: cl.id, key: key}
	switch x := w.rng.IntN(100); {
	case x < 35:
		o.kind = opGet
	case x < 65:
		o.kind = opPut
	case x < 90:
		o.kind = opCAS
		if w.rng.IntN(4) == 0 {
			o.from = ""
		} else {
			o.from = cl.seen[key]
		}
	default:
		o.kind = opDelete
	}
	if o.kind == opPut || o.kind == opCAS {
		o.val = fmt.Sprintf("%s.%d.%d", p.name, cl.n, cl.left)
		if p.life > 0 {
			o.val += fmt.Sprintf("@%d", p.life)
		}
	}
	o.call = w.nextStamp()
	cl.cur = o
	w.stats.Ops++
	w.note("call "+p.name+" "+key+" "+o.val, uint64(o.kind))
	p.submit(o)
}

// audit reads every key once more at the end, through a new client of
// each live proposer (Jepsen's final reads): a value lost late in the run
// shows up here.
func (w *world) audit() {
	for _, p := range w.proposers {
		if !p.up {
			continue
		}
		cl := &client{p: p, id: w.hist.newClient(), n: len(p.clients), seen: map[string]string{}}
		p.clients = append(p.clients, cl)
		for _, key := range w.keys {
			o := &clientOp{cl: cl, clientID: cl.id, kind: opGet, key: key, call: w.nextStamp()}
			cl.cur = o
			p.submit(o)
		}
	}
}

// heal ends the faults: links mend, nodes restart, pauses end; operations
// in flight can finish during the drain.
func (w *world) heal() {
	w.cuts = nil
	w.slow = nil
	for _, a := range w.acceptors {
		if !a.up && !a.deleted {
			a.restart()
		}
	}
	for _, p := range w.proposers {
		p.pausedUntil = 0
	}
	w.note("heal")
}

// finish closes the operations still open at the end: their outcome is
// unknown.
func (w *world) finish() {
	for _, p := range w.proposers {
		for _, cl := range p.clients {
			if cl.cur != nil && !cl.cur.done {
				p.complete(cl.cur, statusUnknown, round.Applied{})
			}
		}
	}
	for _, r := range w.hist.recs {
		switch r.op.Output.(kvOutput).Status {
		case statusUnknown:
			w.stats.Unknown++
			if !w.anyAccepted(r.rounds) {
				w.stats.Pruned++
			}
		case statusFail:
			w.stats.Failed++
		}
	}
}

func (w *world) anyAccepted(rounds []uint64) bool {
	for _, id := range rounds {
		if w.acceptedRounds[id] {
			return true
		}
	}
	return false
}

// Check checks a history for linearizability against the CAS register
// model, per key (lincheck.Check).
func Check(ops []porcupine.Operation, timeout time.Duration) porcupine.CheckResult {
	return lincheck.Check(ops, timeout)
}

// Visualize checks ops again with full information and writes porcupine's
// HTML visualization to path (lincheck.Visualize).
func Visualize(ops []porcupine.Operation, path string, timeout time.Duration) error {
	return lincheck.Visualize(ops, path, timeout)
}
