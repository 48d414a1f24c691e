package proposer_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"
)

// TestRescan walks the skip rule of DESIGN §5 step 3 on real acceptors:
// keys that agree on an accept quorum of S are skipped without a write;
// keys that do not (written while a member was down, then a fourth member
// added) are touched, after which they agree; reads refused for a stale
// epoch lead to a touch; a key nobody stores is skipped.
func TestRescan(t *testing.T) {
	cl := acceptortest.StartCluster(t, 4)
	cfg3, fourth := threeAndSpare(cl)

	var n counters
	c := newClient(t, cl.Addrs()[:1], func(c *proposer.Config) { c.Events = n.events() })
	ctx := ctxT(t)
	keys := func(prefix string, count int) [][]byte {
		var out [][]byte
		for i := range count {
			k := fmt.Sprintf("%s/%d", prefix, i)
			mustPut(t, c, k, k)
			out = append(out, []byte(k))
		}
		return out
	}
	all := keys("r/all", 30)

	// Every Put was acknowledged by qa = 2 of the three members at the
	// same ballot: nothing to do.
	// (Rounds, not RPCs, are counted: the last Put's requests to the
	// slowest member may still be under way.)
	rounds := n.rounds.Load()
	st, err := c.Rescan(ctx, all...)
	if err != nil || st != (proposer.RescanStats{Skipped: 30}) {
		t.Fatalf("Rescan of agreeing keys = %+v, %v; want all skipped", st, err)
	}
	if got := n.rounds.Load() - rounds; got != 0 {
		t.Fatalf("skipped keys ran %d rounds", got)
	}

	// Keys written while a2 was down live on a0 and a1 only.
	cl.Stop(2)
	part := keys("r/part", 20)
	cl.Restart(2)

	stale := newClient(t, cl.Addrs()[:1], nil)
	joint, _, err := membership.Steps(cfg3, membership.Change{Kind: membership.Add, Member: fourth})
	if err != nil {
		t.Fatal(err)
	}
	cl.Install(joint) // S = a0..a3, qa = 3

	// Reads under the old epoch are refused: the key is touched.
	if st, err := stale.Rescan(ctx, all[0]); err != nil || st != (proposer.RescanStats{Touched: 1}) {
		t.Fatalf("Rescan with a stale epoch = %+v, %v; want the key touched", st, err)
	}
	if got := stale.Config().Epoch; got != joint.Epoch {
		t.Fatalf("stale client at epoch %d after Rescan, want %d", got, joint.Epoch)
	}

	// Two of S hold the keys, two do not: short of qa = 3 either way.
	// All four agree that nothing was accepted for a key nobody stores.
	r := newClient(t, cl.Addrs()[:1], nil)
	absent := []byte("r/absent")
	st, err = r.Rescan(ctx, append(part, absent)...)
	if err != nil || st != (proposer.RescanStats{Skipped: 1, Touched: 20}) {
		t.Fatalf("Rescan after adding a3 = %+v, %v; want the 20 keys on two members touched, the absent one skipped", st, err)
	}
	// The touch put them on an accept quorum of S.
	st, err = r.Rescan(ctx, part...)
	if err != nil || st != (proposer.RescanStats{Skipped: 20}) {
		t.Fatalf("second Rescan = %+v, %v; want all skipped", st, err)
	}
	for _, k := range part {
		if v := mustGet(t, r, string(k)); v.Version != 1 || string(v.Data) != string(k) {
			t.Errorf("after Rescan %s = %+v", k, v)
		}
	}
	if _, err := r.Get(ctx, absent); !errors.Is(err, proposer.ErrNotFound) {
		t.Errorf("Rescan created a key: %v", err)
	}
}

// TestRescanMemberDown: with one member of S down, the others decide; every
// key is skipped or touched and keeps its value.
func TestRescanMemberDown(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs()[:1], nil)
	var keys [][]byte
	for i := range 40 {
		k := fmt.Sprintf("d/%d", i)
		mustPut(t, c, k, k)
		keys = append(keys, []byte(k))
	}
	cl.Kill(2)
	st, err := c.Rescan(ctxT(t), keys...)
	if err != nil || st.Skipped+st.Touched != len(keys) {
		t.Fatalf("Rescan with a member down = %+v, %v", st, err)
	}
	for _, k := range keys {
		if v := mustGet(t, c, string(k)); v.Version != 1 || string(v.Data) != string(k) {
			t.Errorf("after Rescan %s = %+v", k, v)
		}
	}
}
