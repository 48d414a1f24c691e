// Package sim is Kshaka's deterministic simulation (DESIGN §8).
//
// One seeded math/rand/v2 source drives everything: a simulated clock
// advanced by an event loop, a network that loses, duplicates, delays and
// reorders requests and responses and cuts links both ways or one way,
// acceptors that crash and restart with their synced state, lose their
// disk or come back from an old copy of it, proposers with their own ballot clocks, 1RTT caches, quorum reads
// and same-key combining, and an operator that carries out membership
// changes, crashing and resuming mid-step from its durable intent.
//
// The simulation drives the real rules: register.State.Prepare/Accept on
// the acceptors, membership.Config.Check as their admission and epoch gate,
// the operator's own transition machine (membership/change.Machine: the
// planner, the fence, the rescan cursor, retirement and replacement) for
// every change, fed with what status probes and install replies show, and
// internal/round (Write, Read,
// Clock, Cache, ApplyAll, Refusal, Settle) for every proposer and for the
// rescan, which touches every key with an identity change that goes again
// above any ballot its prepare shows (Write.Outranked), as the real
// proposer's Rescan does. The withdrawn rule that skipped keys agreeing on
// qa members of the joint accept set lives on only as a negative control
// (skipRule, run when the machine's negative control
// change.Controls.RescanSkip asks for it; caught by the SurvivingBallot
// scenario).
// There are no goroutines and no wall clock in the simulated logic, and no
// map is iterated where order matters, so a seed replays exactly.
//
// Every client operation is recorded with its call and return times in
// simulated time; outcomes that are unknown stay open (return at +∞) unless
// the simulation's ground truth shows the attempt was accepted nowhere.
// Histories are checked with porcupine against a compare-and-swap register
// model partitioned by key.
//
// Faults breaks the driver on purpose (never the rules) to provide the
// negative controls: a checker that cannot catch them proves nothing.
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
