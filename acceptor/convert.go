package acceptor

import (
	"github.com/kshaka-io/kshaka/internal/acceptcore"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// Conversions between the wire types and the core's. A nil protobuf field
// becomes a missing flag, so that validation can tell "absent" from "zero".

func prepareItemsFromProto(items []*kshakav1.PrepareItem) []acceptcore.PrepareItem {
	ops := make([]acceptcore.PrepareItem, len(items))
	for i, it := range items {
		ops[i] = acceptcore.PrepareItem{Key: it.GetKey(), Ballot: kshakav1.BallotFromProto(it.GetBallot())}
	}
	return ops
}

func acceptItemsFromProto(items []*kshakav1.AcceptItem) []acceptcore.AcceptItem {
	ops := make([]acceptcore.AcceptItem, len(items))
	for i, it := range items {
		ops[i] = acceptcore.AcceptItem{
			Key:      it.GetKey(),
			Ballot:   kshakav1.BallotFromProto(it.GetBallot()),
			Value:    kshakav1.ValueFromProto(it.GetValue()),
			HasValue: it.GetValue() != nil,
			Next:     kshakav1.BallotFromProto(it.GetNext()),
		}
	}
	return ops
}
