package wire

import (
	"slices"
	"testing"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

func TestConversionsRoundTrip(t *testing.T) {
	cfg := membership.Stable(4,
		membership.Member{ID: "a", Addr: "a:1", Incarnation: 1},
		membership.Member{ID: "b", Addr: "b:1", Incarnation: 2})
	cfg.Members[1].Prepare = false
	cfg.RemovedBallot, cfg.VersionFloor = register.Ballot{Counter: 5, Proposer: 6}, 11
	got := ConfigFromProto(ConfigToProto(cfg))
	if !got.Equal(cfg) || !slices.Equal(got.Members, cfg.Members) {
		t.Fatalf("config round trip: %+v, want %+v", got, cfg)
	}
	if z := ConfigFromProto(nil); z.Epoch != 0 || z.Members != nil {
		t.Fatalf("nil config = %+v", z)
	}
	b := register.Ballot{Counter: 7, Proposer: 9}
	if got := BallotFromProto(BallotToProto(b)); got != b {
		t.Fatalf("ballot round trip: %v", got)
	}
	if !BallotFromProto(nil).IsZero() {
		t.Fatal("nil ballot is not zero")
	}
	lineage := []register.Link{{Ballot: register.Ballot{Counter: 9, Proposer: 2}, Version: 4}, {Ballot: register.Ballot{Counter: 8, Proposer: 5}, Version: 2}}
	for _, v := range []register.Value{{}, {Version: 3, Data: []byte("x")}, {Version: 4, Tombstone: true, Lineage: lineage}} {
		if got := ValueFromProto(ValueToProto(v)); !got.Equal(v) || !slices.Equal(got.Lineage, v.Lineage) {
			t.Fatalf("value round trip: %v, want %v", got, v)
		}
	}
}
