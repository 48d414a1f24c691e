package kshakav1

import (
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Conversions between the wire types and the register and membership types,
// shared by the acceptor, the proposer, the operator and the CLI. This file
// is written by hand; the rest of the package is generated.

// BallotToProto converts a ballot to its wire form.
func BallotToProto(b register.Ballot) *Ballot {
	return &Ballot{Counter: b.Counter, Proposer: b.Proposer}
}

// BallotFromProto converts a ballot from its wire form; nil is the zero ballot.
func BallotFromProto(b *Ballot) register.Ballot {
	return register.Ballot{Counter: b.GetCounter(), Proposer: b.GetProposer()}
}

// ValueToProto converts a value to its wire form.
func ValueToProto(v register.Value) *Value {
	return &Value{Version: v.Version, Data: v.Data, Tombstone: v.Tombstone}
}

// ValueFromProto converts a value from its wire form; nil is the empty value.
func ValueFromProto(v *Value) register.Value {
	return register.Value{Version: v.GetVersion(), Data: v.GetData(), Tombstone: v.GetTombstone()}
}

// ConfigToProto converts a configuration to its wire form.
func ConfigToProto(c membership.Config) *Config {
	pc := &Config{
		Epoch:         c.Epoch,
		PrepareQuorum: uint32(max(c.PrepareQuorum, 0)),
		AcceptQuorum:  uint32(max(c.AcceptQuorum, 0)),
	}
	for _, m := range c.Members {
		pc.Members = append(pc.Members, &Member{
			Id: m.ID, Addr: m.Addr, Incarnation: m.Incarnation, Prepare: m.Prepare, Accept: m.Accept,
		})
	}
	return pc
}

// ConfigFromProto converts a configuration from its wire form, as it is:
// callers that did not produce it themselves validate it
// (membership.Config.Validate). nil is the zero configuration (epoch 0).
func ConfigFromProto(pc *Config) membership.Config {
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
