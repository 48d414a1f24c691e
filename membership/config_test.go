package membership

import (
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"testing"
)

// shape builds a configuration of n members m0..m(n-1) (incarnations 1..n)
// where member i is in P when bit i of pMask is set and in S when bit i of
// sMask is set.
func shape(epoch uint64, n int, pMask, sMask uint, qp, qa int) Config {
	c := Config{Epoch: epoch, PrepareQuorum: qp, AcceptQuorum: qa}
	for i := 0; i < n; i++ {
		c.Members = append(c.Members, Member{
			ID:          fmt.Sprintf("m%d", i),
			Addr:        fmt.Sprintf("10.0.0.%d:7000", i),
			Incarnation: uint64(i + 1),
			Prepare:     pMask&(1<<i) != 0,
			Accept:      sMask&(1<<i) != 0,
		})
	}
	return c
}

// disjointTable[k] is the largest |S \ A| over all subsets A of P with
// |A| = k, found by enumerating every subset of P; -1 when P has no subset
// of that size. A qp-subset of P misses some qa-subset of S exactly when
// disjointTable[qp] >= qa.
func disjointTable(pMask, sMask uint) []int {
	best := make([]int, bits.OnesCount(pMask)+2)
	for i := range best {
		best[i] = -1
	}
	// Enumerate every subset of pMask.
	for a := pMask; ; a = (a - 1) & pMask {
		k := bits.OnesCount(a)
		if free := bits.OnesCount(sMask &^ a); free > best[k] {
			best[k] = free
		}
		if a == 0 {
			break
		}
	}
	return best
}

// bruteIntersect reports whether every qp-subset of P meets every qa-subset
// of S, by the subset table above.
func bruteIntersect(pMask, sMask uint, qp, qa int) bool {
	if qp < 0 || qa < 0 {
		return false
	}
	best := disjointTable(pMask, sMask)
	if qp >= len(best) || best[qp] < 0 {
		return true // no prepare quorum exists at all
	}
	return best[qp] < qa
}

// literalIntersect enumerates both quorums outright (small n only): the
// reference for the reference.
func literalIntersect(n int, pMask, sMask uint, qp, qa int) bool {
	for a := uint(0); a < 1<<n; a++ {
		if a&^pMask != 0 || bits.OnesCount(a) != qp {
			continue
		}
		for b := uint(0); b < 1<<n; b++ {
			if b&^sMask != 0 || bits.OnesCount(b) != qa {
				continue
			}
			if a&b == 0 {
				return false
			}
		}
	}
	return true
}

// TestIntersectLiteral cross-checks the subset table against enumerating
// both quorums, for every shape (members may be in neither set) up to 6
// members.
func TestIntersectLiteral(t *testing.T) {
	for n := 0; n <= 6; n++ {
		for p := uint(0); p < 1<<n; p++ {
			for s := uint(0); s < 1<<n; s++ {
				for qp := 0; qp <= bits.OnesCount(p)+1; qp++ {
					for qa := 0; qa <= bits.OnesCount(s)+1; qa++ {
						if bruteIntersect(p, s, qp, qa) != literalIntersect(n, p, s, qp, qa) {
							t.Fatalf("n=%d P=%b S=%b qp=%d qa=%d: references disagree", n, p, s, qp, qa)
						}
					}
				}
			}
		}
	}
}

// forEachShape calls f for every configuration shape of 1..maxN members in
// which every member is in P, S or both (3^n shapes per n).
func forEachShape(maxN int, f func(n int, p, s uint)) {
	for n := 1; n <= maxN; n++ {
		var rec func(i int, p, s uint)
		rec = func(i int, p, s uint) {
			if i == n {
				f(n, p, s)
				return
			}
			rec(i+1, p|1<<i, s)      // P only
			rec(i+1, p, s|1<<i)      // S only
			rec(i+1, p|1<<i, s|1<<i) // both
		}
		rec(0, 0, 0)
	}
}

// TestIntersectExhaustive checks Intersect(c, c) against brute force for
// every shape up to 9 members and every qp, qa (including 0 and one past the
// set size), docs/design.md §3 "Validity".
func TestIntersectExhaustive(t *testing.T) {
	checked := 0
	forEachShape(9, func(n int, p, s uint) {
		best := disjointTable(p, s)
		np, ns := bits.OnesCount(p), bits.OnesCount(s)
		c := shape(1, n, p, s, 0, 0)
		for qp := 0; qp <= np+1; qp++ {
			for qa := 0; qa <= ns+1; qa++ {
				c.PrepareQuorum, c.AcceptQuorum = qp, qa
				want := qp > np || best[qp] < qa
				if got := Intersect(c, c); got != want {
					t.Fatalf("%v (n=%d P=%b S=%b): Intersect = %v, brute force %v", c, n, p, s, got, want)
				}
				checked++
			}
		}
	})
	t.Logf("%d configurations checked", checked)
}

// TestValidateExhaustive: for every shape up to 9 members and every qp, qa,
// Validate accepts exactly the configurations whose quorums are in range and
// intersect by brute force (docs/design.md §3).
func TestValidateExhaustive(t *testing.T) {
	valid := 0
	forEachShape(9, func(n int, p, s uint) {
		best := disjointTable(p, s)
		np, ns := bits.OnesCount(p), bits.OnesCount(s)
		c := shape(1, n, p, s, 0, 0)
		for qp := 0; qp <= np+1; qp++ {
			for qa := 0; qa <= ns+1; qa++ {
				c.PrepareQuorum, c.AcceptQuorum = qp, qa
				inRange := qp >= 1 && qp <= np && qa >= 1 && qa <= ns
				want := inRange && best[qp] < qa
				err := c.Validate()
				if (err == nil) != want {
					t.Fatalf("%v (P=%b S=%b): Validate = %v, want valid %v", c, p, s, err, want)
				}
				if err != nil && !errors.Is(err, ErrInvalid) {
					t.Fatalf("%v: error %v does not wrap ErrInvalid", c, err)
				}
				if want {
					valid++
				}
			}
		}
	})
	t.Logf("%d valid configurations", valid)
}

// TestIntersectAcrossConfigs: Intersect(a, b) matches members by
// incarnation, not by position or ID: checked against brute force on
// pairs of shapes over a shared pool of 6 acceptors.
func TestIntersectAcrossConfigs(t *testing.T) {
	const n = 6
	pool := shape(1, n, 1<<n-1, 1<<n-1, 1, 1).Members
	sub := func(in, p, s uint, qp, qa int) Config {
		c := Config{Epoch: 1, PrepareQuorum: qp, AcceptQuorum: qa}
		for i, m := range pool {
			if in&(1<<i) == 0 {
				continue
			}
			m.Prepare, m.Accept = p&(1<<i) != 0, s&(1<<i) != 0
			c.Members = append(c.Members, m)
		}
		return c
	}
	checked := 0
	for pa := uint(0); pa < 1<<n; pa++ {
		for sb := uint(0); sb < 1<<n; sb += 3 { // every third S keeps it quick
			best := disjointTable(pa, sb)
			for qp := 1; qp <= bits.OnesCount(pa); qp++ {
				for qa := 1; qa <= bits.OnesCount(sb); qa++ {
					// a has P = pa (S = all); b has S = sb (P = all).
					a := sub(1<<n-1, pa, 1<<n-1, qp, 1)
					b := sub(1<<n-1, 1<<n-1, sb, 1, qa)
					if got, want := Intersect(a, b), best[qp] < qa; got != want {
						t.Fatalf("P_a=%b/%d S_b=%b/%d: Intersect = %v, brute force %v", pa, qp, sb, qa, got, want)
					}
					checked++
				}
			}
		}
	}
	// Same ID, different incarnation: a disk-lost acceptor is not the
	// member it replaced (docs/design.md §4).
	a := Stable(1, Member{ID: "x", Addr: "x:1", Incarnation: 1})
	b := Stable(2, Member{ID: "x", Addr: "x:1", Incarnation: 2})
	if Intersect(a, b) || Intersect(b, a) {
		t.Fatal("configurations sharing only an ID intersect")
	}
	t.Logf("%d pairs checked", checked)
}

// TestValidateReportsEverything: Validate lists every problem at once
// (STYLE: "Validate() that reports every problem at once").
func TestValidateReportsEverything(t *testing.T) {
	c := Config{
		Epoch: 0,
		Members: []Member{
			{ID: "b", Addr: "b:1", Incarnation: 1, Prepare: true, Accept: true},
			{ID: "a", Addr: "", Incarnation: 1},
			{ID: "a", Addr: "a:1", Incarnation: 0, Prepare: true},
			{ID: "", Addr: "z:1", Incarnation: 3, Accept: true},
		},
		PrepareQuorum: 3,
		AcceptQuorum:  0,
	}
	err := c.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v", err)
	}
	for _, want := range []string{
		"epoch must be positive",
		`member ID "a" appears twice`,
		"member 3 has an empty ID",
		`member "a" has incarnation 0`,
		"incarnation 1 appears twice",
		`member "a" has no address`,
		`member "a" is in neither`,
		"not sorted",
		"prepare quorum 3 is outside 1..2",
		"accept quorum 0 is outside 1..2",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
}

func TestStable(t *testing.T) {
	c := Stable(4, Member{ID: "c", Addr: "c:1", Incarnation: 3}, Member{ID: "a", Addr: "a:1", Incarnation: 1}, Member{ID: "b", Addr: "b:1", Incarnation: 2})
	if err := c.Validate(); err != nil || !c.IsStable() || c.PrepareQuorum != 2 || c.AcceptQuorum != 2 {
		t.Fatalf("Stable: %v, %v", c, err)
	}
	if c.Members[0].ID != "a" || c.String() != "epoch 4 P{a,b,c}/2 S{a,b,c}/2" {
		t.Fatalf("Stable: %v", c)
	}
	for n, q := range []int{1, 1, 2, 2, 3, 3, 4, 4, 5, 5} {
		if Majority(n) != q {
			t.Errorf("Majority(%d) = %d, want %d", n, Majority(n), q)
		}
	}
	d := c.Clone()
	d.Members[0].ID = "zz"
	if c.Members[0].ID != "a" {
		t.Fatal("Clone shares members")
	}
}

// TestCheckGate is the acceptor's admission and epoch gate (docs/design.md §3, §4).
func TestCheckGate(t *testing.T) {
	cfg := Stable(5, Member{ID: "a", Addr: "a:1", Incarnation: 10}, Member{ID: "b", Addr: "b:1", Incarnation: 20}, Member{ID: "c", Addr: "c:1", Incarnation: 30})
	var none *Config
	for _, tc := range []struct {
		name        string
		cfg         *Config
		incarnation uint64
		epoch       uint64
		want        error
	}{
		{"no configuration yet (empty disk)", none, 10, 5, ErrNotAdmitted},
		{"zero configuration", &Config{}, 10, 5, ErrNotAdmitted},
		{"listed, same epoch", &cfg, 10, 5, nil},
		{"listed, higher epoch (mixed state of a step)", &cfg, 20, 6, nil},
		{"listed, lower epoch", &cfg, 30, 4, ErrStaleEpoch},
		{"listed, epoch 0", &cfg, 30, 0, ErrStaleEpoch},
		{"new incarnation under the same ID (disk lost)", &cfg, 11, 5, ErrNotAdmitted},
		{"not admitted wins over stale", &cfg, 11, 1, ErrNotAdmitted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Check(tc.incarnation, tc.epoch); !errors.Is(got, tc.want) || (tc.want == nil) != (got == nil) {
				t.Fatalf("Check(%d, %d) = %v, want %v", tc.incarnation, tc.epoch, got, tc.want)
			}
		})
	}
}

func TestSetsAndLookups(t *testing.T) {
	c := shape(3, 4, 0b0111, 0b1110, 2, 2)
	if got := len(c.PrepareSet()); got != 3 {
		t.Fatalf("PrepareSet: %d", got)
	}
	if got := len(c.AcceptSet()); got != 3 {
		t.Fatalf("AcceptSet: %d", got)
	}
	if m, ok := c.Member(4); !ok || m.ID != "m3" {
		t.Fatalf("Member(4) = %v, %v", m, ok)
	}
	if _, ok := c.Member(99); ok {
		t.Fatal("Member(99) found")
	}
	if m, ok := c.MemberByID("m1"); !ok || m.Incarnation != 2 {
		t.Fatalf("MemberByID = %v %v", m, ok)
	}
	if c.IsStable() {
		t.Fatal("IsStable on a joint shape")
	}
	if got := c.String(); got != "epoch 3 P{m0,m1,m2}/2 S{m1,m2,m3}/2" {
		t.Fatalf("String() = %q", got)
	}
}
