package acceptcore

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kshaka-io/kshaka/register"
)

// TestPromisesAreNeverBroken checks the durability policy against its
// purpose (docs/design.md §2.2: a promise is never broken, an acknowledged accept is
// never lost) on random runs of the toy driver: prepares and accepts with
// random ballots, and crashes that lose a random part of what was committed
// without a sync. After every step, each key's promise as the rules see it
// (its record with the restart floor) must be at least every promise the
// acceptor answered for it, in any life, and its accepted ballot at least
// every accept it answered. The same runs with VolatilePromises must break
// a promise: the check can see the bug the simulation's negative control
// plants.
//
// The runs also collect tombstones (docs/design.md §10): the GC floors rise
// to a tombstone's ballot and version and Collect runs on it. A removed
// record must keep every promise through the absent-key floor R, and its
// accepted ballot counts as kept when it is at most R. With
// IgnoreCollectPromise, Collect must break a promise too.
func TestPromisesAreNeverBroken(t *testing.T) {
	for _, c := range []struct {
		name              string
		volatile, collect bool
	}{{"sound", false, false}, {"volatile", true, false}, {"collect-promised", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			broken := 0
			for seed := uint64(1); seed <= 300; seed++ {
				if err := promiseRun(seed, c.volatile, c.collect); err != nil {
					if !c.volatile && !c.collect {
						t.Fatalf("seed %d: %v", seed, err)
					}
					broken++
				}
			}
			if (c.volatile || c.collect) && broken == 0 {
				t.Fatalf("%s broke no promise in 300 runs: the check is blind", c.name)
			}
		})
	}
}

// promiseRun is one random run; it returns the first broken guarantee.
func promiseRun(seed uint64, volatile, ignoreCollectPromise bool) error {
	r := rand.New(rand.NewPCG(seed, 7))
	c, err := New(Options{MaxKeySize: 8, MaxValueSize: 8, MaxBatchItems: 4, LogicalCounters: true,
		PromiseFloorStep: uint64(r.IntN(6)), VolatilePromises: volatile, IgnoreCollectPromise: ignoreCollectPromise})
	if err != nil {
		return err
	}
	d := &driver{core: c, now: time.UnixMicro(0), disk: map[string]register.State{}, unsynced: map[string]register.State{}}
	promised := map[string]register.Ballot{} // the highest promise answered per key
	accepted := map[string]register.Ballot{} // the highest accept answered per key
	keys := []string{"a", "b", "c"}
	ballot := func() register.Ballot {
		return register.Ballot{Counter: 1 + uint64(r.IntN(40)), Proposer: 1 + uint64(r.IntN(3))}
	}
	var log []string
	for step := 0; step < 200; step++ {
		k := keys[r.IntN(len(keys))]
		switch n := r.IntN(12); {
		case n < 5:
			b := ballot()
			out, _, err := d.prepare([]PrepareItem{{Key: []byte(k), Ballot: b}})
			if err != nil {
				return err
			}
			if out[0].OK {
				promised[k] = promised[k].Max(b)
			}
			log = append(log, fmt.Sprintf("prepare %s %v: %v", k, b, out[0].OK))
		case n < 9:
			b := ballot()
			it := AcceptItem{Key: []byte(k), Ballot: b, Value: register.Value{Version: 1, Tombstone: r.IntN(2) == 0}, HasValue: true}
			if r.IntN(2) == 0 {
				it.Next = register.Ballot{Counter: b.Counter + 1, Proposer: b.Proposer}
			}
			out, _, err := d.accept([]AcceptItem{it})
			if err != nil {
				return err
			}
			if out[0].OK {
				accepted[k] = accepted[k].Max(b)
				promised[k] = promised[k].Max(b).Max(it.Next)
			}
			log = append(log, fmt.Sprintf("accept %s %v next %v: %v", k, b, it.Next, out[0].OK))
		case n < 10:
			lost, restart, _ := d.crash(func(string) bool { return r.IntN(2) == 0 })
			log = append(log, fmt.Sprintf("crash: lost %v, restart floor %d", lost, restart))
		default:
			st, ok := d.disk[k]
			if !ok || !st.Value.Tombstone {
				continue
			}
			d.gc = Floors{Removed: d.gc.Removed.Max(st.Accepted), Version: max(d.gc.Version, st.Value.Version)}
			v := c.Collect(d.floors(), []CollectItem{{Key: []byte(k), Ballot: st.Accepted, Version: st.Value.Version}}, []register.State{st})[0]
			if v == CollectRemoved {
				delete(d.disk, k)
				delete(d.unsynced, k)
			}
			log = append(log, fmt.Sprintf("collect %s at %v (floor %v): %v", k, st.Accepted, d.gc.Removed, v))
		}
		for _, k := range keys {
			st := floored(d.disk[k], d.floors())
			// A collected record, or one a prepare wrote since on the
			// absent key, stands for an accepted ballot ≤ R.
			present := !d.disk[k].Accepted.IsZero()
			switch {
			case st.Promise.Less(promised[k]):
				return fmt.Errorf("key %s: promise %v broken: the acceptor now promises only %v\n%s",
					k, promised[k], st.Promise, strings.Join(log, "\n"))
			case st.Accepted.Less(accepted[k]) && (present || d.gc.Removed.Less(accepted[k])):
				return fmt.Errorf("key %s: accept %v lost: the acceptor now has %v\n%s",
					k, accepted[k], st.Accepted, strings.Join(log, "\n"))
			}
		}
	}
	return nil
}

// TestProblemsBounded: a huge bad batch yields a bounded message.
func TestProblemsBounded(t *testing.T) {
	c, err := New(Options{MaxKeySize: 10, MaxValueSize: 10, MaxBatchItems: 1000, MaxBallotLead: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	items := make([]PrepareItem, 100)
	for i := range items {
		items[i] = PrepareItem{Key: []byte(fmt.Sprint(i))}
	}
	if err := c.CheckPrepare(items, time.Now()); err == nil || !strings.Contains(err.Error(), "and 90 more") {
		t.Fatalf("err = %v", err)
	}
}
