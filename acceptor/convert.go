package acceptor

import (
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// Conversions between the wire types and the register and membership types.

func prepareOpsFromProto(items []*kshakav1.PrepareItem) []prepareOp {
	ops := make([]prepareOp, len(items))
	for i, it := range items {
		ops[i] = prepareOp{Key: it.GetKey(), Ballot: kshakav1.BallotFromProto(it.GetBallot())}
	}
	return ops
}

func acceptOpsFromProto(items []*kshakav1.AcceptItem) []acceptOp {
	ops := make([]acceptOp, len(items))
	for i, it := range items {
		ops[i] = acceptOp{
			Key:      it.GetKey(),
			Ballot:   kshakav1.BallotFromProto(it.GetBallot()),
			Value:    kshakav1.ValueFromProto(it.GetValue()),
			HasValue: it.GetValue() != nil,
			Next:     kshakav1.BallotFromProto(it.GetNext()),
		}
	}
	return ops
}
