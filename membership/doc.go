// Package membership holds Kshaka's configurations and the pure rules about
// them: quorum math, validity, the admission gate every acceptor applies to
// requests, and the planner of membership changes (docs/design.md §3 and §5).
//
// A Config is (epoch, members, prepare set P with quorum QP, accept set S
// with quorum QA). Only the operator creates configurations. A Config is
// valid when every QP-subset of P intersects every QA-subset of S; two
// adjacent configurations must also be valid across each other, in both
// directions (Compatible).
//
// The planner (Steps) turns one change — add or remove one member — into
// the two configurations of docs/design.md §5. Between them, after the first one is
// fenced, every key must be rescanned; the operator and the simulation both
// drive this same planner.
package membership
