package acceptor

import (
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// Conversions between the wire types and the register and membership types.

func ballotFromProto(b *kshakav1.Ballot) register.Ballot {
	return register.Ballot{Counter: b.GetCounter(), Proposer: b.GetProposer()}
}

func ballotToProto(b register.Ballot) *kshakav1.Ballot {
	return &kshakav1.Ballot{Counter: b.Counter, Proposer: b.Proposer}
}

func valueFromProto(v *kshakav1.Value) register.Value {
	return register.Value{Version: v.GetVersion(), Data: v.GetData(), Tombstone: v.GetTombstone()}
}

func valueToProto(v register.Value) *kshakav1.Value {
	return &kshakav1.Value{Version: v.Version, Data: v.Data, Tombstone: v.Tombstone}
}

func configToProto(c membership.Config) *kshakav1.Config {
	pc := &kshakav1.Config{
		Epoch:         c.Epoch,
		PrepareQuorum: uint32(max(c.PrepareQuorum, 0)),
		AcceptQuorum:  uint32(max(c.AcceptQuorum, 0)),
	}
	for _, m := range c.Members {
		pc.Members = append(pc.Members, &kshakav1.Member{
			Id: m.ID, Addr: m.Addr, Incarnation: m.Incarnation, Prepare: m.Prepare, Accept: m.Accept,
		})
	}
	return pc
}

func configFromProto(pc *kshakav1.Config) membership.Config {
	c := membership.Config{
		Epoch:         pc.GetEpoch(),
		PrepareQuorum: int(pc.GetPrepareQuorum()),
		AcceptQuorum:  int(pc.GetAcceptQuorum()),
	}
	for _, m := range pc.GetMembers() {
		c.Members = append(c.Members, membership.Member{
			ID: m.GetId(), Addr: m.GetAddr(), Incarnation: m.GetIncarnation(), Prepare: m.GetPrepare(), Accept: m.GetAccept(),
		})
	}
	return c
}

func prepareOpsFromProto(items []*kshakav1.PrepareItem) []prepareOp {
	ops := make([]prepareOp, len(items))
	for i, it := range items {
		ops[i] = prepareOp{Key: it.GetKey(), Ballot: ballotFromProto(it.GetBallot())}
	}
	return ops
}

func acceptOpsFromProto(items []*kshakav1.AcceptItem) []acceptOp {
	ops := make([]acceptOp, len(items))
	for i, it := range items {
		ops[i] = acceptOp{
			Key:      it.GetKey(),
			Ballot:   ballotFromProto(it.GetBallot()),
			Value:    valueFromProto(it.GetValue()),
			HasValue: it.GetValue() != nil,
			Next:     ballotFromProto(it.GetNext()),
		}
	}
	return ops
}
