// Package change is the membership transition machine of docs/design.md §3–§5: the
// one procedure that the operator (package controllers), the deterministic
// simulation and the exhaustive explorer (package test/sim) all run. It has
// no Kubernetes, network or clock in it (the etcd-io/raft pattern): the
// caller observes, calls Machine.Next, records the decision's intent, then
// acts.
//
//	observation ─┐
//	             ├─ Machine.Next ─→ Decision{Intent, Action, Events, …}
//	intent ──────┘                   │
//	                                 ├─ 1. record Intent (durably)
//	                                 └─ 2. carry out Action
//
// Inputs. The Intent is the durable state: the current configuration, the
// transition in progress with its step and rescan cursor, the retired
// incarnations and, per slot, the highest epoch acknowledged. The
// Observation is what one look at the cluster found: per slot, whether its
// process runs and its acceptor answered, with which incarnation and epoch;
// the desired size and the order of slots; incarnations a person asserted
// will never return.
//
// Outputs. The Decision carries the new intent and at most one Action:
// install a configuration on some members, rescan under the fenced joint
// epoch from the cursor, recycle a slot whose acceptor answers with a
// retired incarnation, stop a removed member, delete its storage. A rescan
// reports its progress through Machine.Rescanned, which returns the intent
// to record before the next batch.
//
// Invariants (each one is a test in this package, in package controllers
// and in test/sim):
//   - One membership change at a time; configurations come only from
//     membership.Steps (membership.Stable for the first one).
//   - No rescan and no next epoch before the current epoch is fenced: every
//     non-retired member of the previous and the new configuration has
//     acknowledged it. An unreachable member blocks the change.
//   - The member being added gets the joint configuration before anyone.
//   - The rescan touches every key (no skip rule) and resumes after the
//     recorded cursor.
//   - A member whose slot answers with another, empty incarnation lost its
//     storage; one that answers with its incarnation and a lower epoch than
//     recorded was rolled back. Either is retired (never counted again),
//     removed, and its slot added back as a new member. An unreachable
//     member is never retired.
//   - Shrinking: membership removal first, the process second, the
//     storage last.
//
// Controls holds the negative controls: documented ways to break the
// procedure that the simulation and the explorer must catch. Production
// never sets them.
package change
