package wire

import (
	"github.com/kshaka-io/kshaka/internal/acceptcore"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// BallotToProto converts a ballot to its wire form.
func BallotToProto(b register.Ballot) *kshakav1.Ballot {
	return &kshakav1.Ballot{Counter: b.Counter, Proposer: b.Proposer}
}

// BallotFromProto converts a ballot from its wire form; nil is the zero ballot.
func BallotFromProto(b *kshakav1.Ballot) register.Ballot {
	return register.Ballot{Counter: b.GetCounter(), Proposer: b.GetProposer()}
}

// ValueToProto converts a value to its wire form.
func ValueToProto(v register.Value) *kshakav1.Value {
	pv := &kshakav1.Value{Version: v.Version, Data: v.Data, Tombstone: v.Tombstone}
	if len(v.Lineage) > 0 {
		pv.Lineage = make([]uint64, 0, 3*len(v.Lineage))
		for _, l := range v.Lineage {
			pv.Lineage = append(pv.Lineage, l.Ballot.Counter, l.Ballot.Proposer, l.Version)
		}
	}
	return pv
}

// ValueFromProto converts a value from its wire form, as it is; nil is the
// empty value. Callers that did not produce it check its lineage
// (register.CheckLineage: the acceptor core refuses a malformed one). A
// lineage that is not whole links ends with a zero link, which the check
// refuses.
func ValueFromProto(v *kshakav1.Value) register.Value {
	rv := register.Value{Version: v.GetVersion(), Data: v.GetData(), Tombstone: v.GetTombstone()}
	if pl := v.GetLineage(); len(pl) > 0 {
		rv.Lineage = make([]register.Link, 0, (len(pl)+2)/3)
		for ; len(pl) >= 3; pl = pl[3:] {
			rv.Lineage = append(rv.Lineage, register.Link{Ballot: register.Ballot{Counter: pl[0], Proposer: pl[1]}, Version: pl[2]})
		}
		if len(pl) > 0 {
			rv.Lineage = append(rv.Lineage, register.Link{})
		}
	}
	return rv
}

// ConfigToProto converts a configuration to its wire form.
func ConfigToProto(c membership.Config) *kshakav1.Config {
	pc := &kshakav1.Config{
		Epoch:         c.Epoch,
		PrepareQuorum: uint32(max(c.PrepareQuorum, 0)),
		AcceptQuorum:  uint32(max(c.AcceptQuorum, 0)),
		VersionFloor:  c.VersionFloor,
	}
	if !c.RemovedBallot.IsZero() {
		pc.RemovedBallot = BallotToProto(c.RemovedBallot)
	}
	for _, m := range c.Members {
		pc.Members = append(pc.Members, &kshakav1.Member{
			Id: m.ID, Addr: m.Addr, Incarnation: m.Incarnation, Prepare: m.Prepare, Accept: m.Accept,
		})
	}
	return pc
}

// ConfigFromProto converts a configuration from its wire form, as it is:
// callers that did not produce it themselves validate it
// (membership.Config.Validate). nil is the zero configuration (epoch 0).
func ConfigFromProto(pc *kshakav1.Config) membership.Config {
	c := membership.Config{
		Epoch:         pc.GetEpoch(),
		PrepareQuorum: int(pc.GetPrepareQuorum()),
		AcceptQuorum:  int(pc.GetAcceptQuorum()),
		RemovedBallot: BallotFromProto(pc.GetRemovedBallot()),
		VersionFloor:  pc.GetVersionFloor(),
	}
	for _, m := range pc.GetMembers() {
		c.Members = append(c.Members, membership.Member{
			ID: m.GetId(), Addr: m.GetAddr(), Incarnation: m.GetIncarnation(), Prepare: m.GetPrepare(), Accept: m.GetAccept(),
		})
	}
	return c
}

// PrepareItemsFromProto converts a prepare request's items to the
// acceptor core's.
func PrepareItemsFromProto(items []*kshakav1.PrepareItem) []acceptcore.PrepareItem {
	ops := make([]acceptcore.PrepareItem, len(items))
	for i, it := range items {
		ops[i] = acceptcore.PrepareItem{Key: it.GetKey(), Ballot: BallotFromProto(it.GetBallot())}
	}
	return ops
}

// AcceptItemsFromProto converts an accept request's items to the acceptor
// core's. A missing value becomes HasValue false, so that the core's
// validation can tell "absent" from "empty".
func AcceptItemsFromProto(items []*kshakav1.AcceptItem) []acceptcore.AcceptItem {
	ops := make([]acceptcore.AcceptItem, len(items))
	for i, it := range items {
		ops[i] = acceptcore.AcceptItem{
			Key:      it.GetKey(),
			Ballot:   BallotFromProto(it.GetBallot()),
			Value:    ValueFromProto(it.GetValue()),
			HasValue: it.GetValue() != nil,
			Next:     BallotFromProto(it.GetNext()),
		}
	}
	return ops
}
