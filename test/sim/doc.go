// Package sim is Kshaka's deterministic simulation (docs/design.md §8).
//
// One seeded math/rand/v2 source drives everything: a simulated clock
// advanced by an event loop, a network that loses, duplicates, delays and
// reorders requests and responses and cuts links both ways or one way,
// acceptors that crash and restart with their synced state, lose their
// disk or come back from an old copy of it, proposers with their own
// ballot clocks, 1RTT caches, quorum reads
// and same-key combining, and an operator that carries out membership
// changes, crashing and resuming mid-step from its durable intent.
//
// The simulation drives the real rules: the acceptor core
// (internal/acceptcore: validation, register.State.Prepare/Accept over the
// request, the promise-floor durability policy and the restart floor) on
// the acceptors, exactly as package acceptor runs it over Pebble,
// membership.Config.Check as their admission and epoch gate, the
// operator's own transition machine (membership/change.Machine: the
// planner, the fence, the rescan cursor, retirement and replacement) for
// every change, fed with what status probes and install replies show, and
// for every proposer the proposer library's own per-key procedure,
// internal/keyproc (same-key combining, the 1RTT cache, settling of unknown
// outcomes, retries and backoff, the classification of accept replies,
// quorum reads and their fall back), of which the simulated proposer is
// only the message pump. The operator's rescan is proposer.Client.Rescan's:
// it touches every key with proposer.Client.Touch's op on the same
// keyproc machine (an identity change with a fresh ballot that goes again
// above any ballot its prepare shows), and the simulated operator is only
// its message pump too (rescan.go). The withdrawn rule that skipped keys
// agreeing on qa members of the joint accept set lives on only as a
// negative control (skipRule, run when the machine's negative control
// change.Controls.RescanSkip asks for it; caught by the SurvivingBallot
// scenario). There are no goroutines and no
// wall clock in the simulated logic, and no map is iterated where order
// matters, so a seed replays exactly.
//
// Every client operation is recorded with its call and return times in
// simulated time; outcomes that are unknown stay open (return at +∞) unless
// the simulation's ground truth shows the attempt was accepted nowhere.
// Histories are checked with porcupine against a compare-and-swap register
// model partitioned by key.
//
// There is no second copy of the acceptor's durability policy under test/:
// acceptor.go holds the simulated disk (what a crash keeps of the writes
// the core let go without a sync, with probability Options.LoseUnsynced)
// and the core's inputs, and decides nothing the core decides. The
// ballot-lead bound is not modelled (the counters here are not wall
// clocks; see coreOptions).
//
// Faults breaks the driver on purpose (never the rules) to provide the
// negative controls: a checker that cannot catch them proves nothing.
// The one exception is VolatilePromises, a documented negative-control
// switch of the acceptor core that production never sets.
//
// Explore is a bounded exhaustive state explorer for the membership
// procedure over the same rules and the same transition machine (up to six
// slots: five members and one to add), with its negative controls.
//
// Running it:
//
//	go test ./test/sim                         # the CI budget (a minute or two)
//	go test ./test/sim -run 'TestSim$' -sim.seeds=100000   # a soak (or KSHAKA_SIM_SEEDS)
//	go test ./test/sim -run TestExplore -v -explore.soak    # the explorer's large configurations
//	go test ./test/sim -run TestSeedTrace -seed=N -v       # replay one seed, with its event log
//
// A failing seed prints its replay command and writes porcupine's HTML
// visualization under $KSHAKA_SIM_FAILURES (default: the system temp
// directory, kshaka-sim-failures/).
package sim
