package gc

import (
	"errors"
	"slices"
	"testing"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

func three() membership.Config {
	c := membership.Stable(4, membership.Member{ID: "a", Addr: "a:1", Incarnation: 1},
		membership.Member{ID: "b", Addr: "b:1", Incarnation: 2}, membership.Member{ID: "c", Addr: "c:1", Incarnation: 3})
	c.RemovedBallot, c.VersionFloor = register.Ballot{Counter: 50, Proposer: 9}, 30
	return c
}

func b(c uint64) register.Ballot { return register.Ballot{Counter: c, Proposer: 1} }

func tomb(v uint64) register.Value { return register.Value{Version: v, Tombstone: true} }

// TestMachineBatch walks one batch through its three steps (docs/design.md
// §10): write, install the floor epoch and wait for the fence, collect.
func TestMachineBatch(t *testing.T) {
	cfg := three()
	m, err := New(cfg, [][]byte{[]byte("k1"), []byte("k2"), []byte("k3"), []byte("k4"), []byte("k1")}, Controls{})
	if err != nil {
		t.Fatal(err)
	}
	a := m.Next()
	if a.Step != StepWrite || len(a.Keys) != 4 {
		t.Fatalf("first step %v with %d keys, want write of 4 (duplicates dropped)", a.Step, len(a.Keys))
	}
	m.Written([]byte("k1"), WriteResult{OK: true, Value: tomb(7), Ballot: b(100)})
	m.Written([]byte("k2"), WriteResult{OK: true, Value: tomb(40), Ballot: b(90)})
	m.Written([]byte("k3"), WriteResult{OK: true, Value: register.Value{Version: 8, Data: []byte("live")}, Ballot: b(120)})
	if m.Next().Step != StepWrite || len(m.Next().Keys) != 1 {
		t.Fatalf("step %v before every write is in", m.Next().Step)
	}
	m.Written([]byte("k4"), WriteResult{}) // missed a member
	a = m.Next()
	if a.Step != StepInstall {
		t.Fatalf("step %v after the writes, want install", a.Step)
	}
	next := a.Config
	// The floors rise to the highest ballot and version written, not past
	// what a live key showed, and never below the old ones.
	if next.Epoch != cfg.Epoch+1 || next.RemovedBallot != b(100) || next.VersionFloor != 40 ||
		!slices.Equal(next.Members, cfg.Members) {
		t.Fatalf("floor epoch %v, want epoch %d R=%v VF=40 with the same members", next, cfg.Epoch+1, b(100))
	}
	if err := membership.Compatible(cfg, next); err != nil {
		t.Fatal(err)
	}
	// Not fenced while one member is behind.
	m.Acked(1, next.Epoch)
	m.Acked(2, next.Epoch+3)
	m.Acked(3, cfg.Epoch)
	m.Acked(99, next.Epoch) // not a member
	if a := m.Next(); a.Step != StepInstall || len(a.Targets) != 1 || a.Targets[0].ID != "c" {
		t.Fatalf("after two acks: %v to %v, want install on c", a.Step, a.Targets)
	}
	m.Acked(3, next.Epoch)
	a = m.Next()
	if a.Step != StepCollect || len(a.Targets) != 3 || len(a.Items) != 2 {
		t.Fatalf("after the fence: %v of %d items on %d members, want collect of 2 on 3", a.Step, len(a.Items), len(a.Targets))
	}
	if !m.Config().Equal(next) {
		t.Fatalf("config after the fence %v, want %v", m.Config(), next)
	}
	if a.Items[0].Ballot != b(100) || a.Items[0].Version != 7 || string(a.Items[1].Key) != "k2" {
		t.Fatalf("items %+v", a.Items)
	}
	m.Collected(1, []Verdict{Removed, Removed})
	m.Collected(2, []Verdict{Absent, Changed})
	m.Collected(2, []Verdict{Removed, Removed}) // repeated: ignored
	m.Collected(3, []Verdict{Removed, Removed})
	if m.Next().Step != StepDone {
		t.Fatalf("step %v after every collect", m.Next().Step)
	}
	want := Stats{Candidates: 4, Live: 1, Unreached: 1, Collected: 1, Kept: 1, Epoch: next.Epoch}
	if got := m.Stats(); got != want {
		t.Fatalf("stats %+v, want %+v", got, want)
	}
}

// TestMachineNothingToCollect: a batch without tombstones installs nothing.
func TestMachineNothingToCollect(t *testing.T) {
	m, err := New(three(), [][]byte{[]byte("k")}, Controls{})
	if err != nil {
		t.Fatal(err)
	}
	m.Written([]byte("k"), WriteResult{OK: true, Value: register.Value{Version: 3, Data: []byte("x")}, Ballot: b(60)})
	if a := m.Next(); a.Step != StepDone {
		t.Fatalf("step %v, want done", a.Step)
	}
	if empty, _ := New(three(), nil, Controls{}); empty.Next().Step != StepDone {
		t.Fatal("an empty batch is not done")
	}
}

// TestMachineUnreachableMemberKeeps: a member that does not answer the
// collect keeps its records; the key counts as kept.
func TestMachineUnreachableMemberKeeps(t *testing.T) {
	m, _ := New(three(), [][]byte{[]byte("k")}, Controls{})
	m.Written([]byte("k"), WriteResult{OK: true, Value: tomb(31), Ballot: b(60)})
	for inc := uint64(1); inc <= 3; inc++ {
		m.Acked(inc, 5)
	}
	m.Collected(1, []Verdict{Removed})
	m.Collected(2, nil)
	m.Collected(3, []Verdict{Removed, Removed}) // wrong length: as no answer
	if st := m.Stats(); m.Next().Step != StepDone || st.Kept != 1 || st.Collected != 0 {
		t.Fatalf("step %v stats %+v", m.Next().Step, st)
	}
}

// TestMachineNeedsStableConfig: GC and membership changes are serialized.
func TestMachineNeedsStableConfig(t *testing.T) {
	cfg := three()
	cfg.Members[2].Prepare = false
	cfg.PrepareQuorum = 2
	if _, err := New(cfg, nil, Controls{}); !errors.Is(err, ErrNotStable) {
		t.Fatalf("err = %v, want ErrNotStable", err)
	}
}

// TestSkipFloorEpochControl: the negative control collects without the
// floor epoch.
func TestSkipFloorEpochControl(t *testing.T) {
	m, _ := New(three(), [][]byte{[]byte("k")}, Controls{SkipFloorEpoch: true})
	m.Written([]byte("k"), WriteResult{OK: true, Value: tomb(31), Ballot: b(60)})
	if a := m.Next(); a.Step != StepCollect || m.Stats().Epoch != 0 {
		t.Fatalf("step %v epoch %d, want collect without an epoch", a.Step, m.Stats().Epoch)
	}
}
