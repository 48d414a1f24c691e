package register

import (
	"errors"
	"slices"
	"testing"
)

// TestCreatedBy: the creator of a version is known only inside a link's
// range whose lower bound is known, and at the oldest link's own version.
func TestCreatedBy(t *testing.T) {
	v := Value{Version: 9, Lineage: []Link{{bal(30, 1), 9}, {bal(20, 2), 6}, {bal(10, 3), 4}}}
	for _, tc := range []struct {
		x     uint64
		want  Ballot
		known bool
	}{
		{10, Ballot{}, false}, // above the value
		{9, bal(30, 1), true},
		{7, bal(30, 1), true},
		{6, bal(20, 2), true},
		{5, bal(20, 2), true},
		{4, bal(10, 3), true}, // the oldest link's own version
		{3, Ballot{}, false},  // below it: its lower bound is unknown
		{0, Ballot{}, false},
	} {
		if b, ok := v.CreatedBy(tc.x); b != tc.want || ok != tc.known {
			t.Errorf("CreatedBy(%d) = %v, %v; want %v, %v", tc.x, b, ok, tc.want, tc.known)
		}
	}
	if _, ok := (Value{Version: 3}).CreatedBy(3); ok {
		t.Error("a value without lineage knows a creator")
	}
}

// TestStamp: a changed version gets the proposal's link on top of the
// base's lineage, truncated; an unchanged one keeps the base's lineage.
func TestStamp(t *testing.T) {
	base := Value{Version: 4, Lineage: []Link{{bal(20, 2), 4}, {bal(10, 3), 2}}}
	got := Stamp(base.Put([]byte("a")).Put([]byte("b")), base, bal(30, 1), 0)
	if want := []Link{{bal(30, 1), 6}, {bal(20, 2), 4}, {bal(10, 3), 2}}; !slices.Equal(got.Lineage, want) {
		t.Fatalf("stamped %v, want %v", got.Lineage, want)
	}
	if err := CheckLineage(got); err != nil {
		t.Fatal(err)
	}
	if got := Stamp(base.Put(nil), base, bal(30, 1), 2); !slices.Equal(got.Lineage, []Link{{bal(30, 1), 5}, {bal(20, 2), 4}}) {
		t.Fatalf("truncated to 2: %v", got.Lineage)
	}
	id := Stamp(Value{Version: 4}, base, bal(30, 1), 0)
	if !slices.Equal(id.Lineage, base.Lineage) {
		t.Fatalf("identity: %v", id.Lineage)
	}
	id.Lineage[0].Version = 99
	if base.Lineage[0].Version != 4 {
		t.Fatal("Stamp shares the base's lineage")
	}
	if got := Stamp(base.Put(nil), base, bal(15, 1), 0); !slices.Equal(got.Lineage, []Link{{bal(15, 1), 5}}) {
		t.Fatalf("a base lineage the ballot does not outrank is dropped: %v", got.Lineage)
	}
}

func TestCheckLineage(t *testing.T) {
	ok := Value{Version: 5, Lineage: []Link{{bal(20, 2), 5}, {bal(10, 3), 2}}}
	if err := CheckLineage(ok); err != nil {
		t.Fatal(err)
	}
	long := Value{Version: 100}
	for i := range MaxLineage + 1 {
		long.Lineage = append(long.Lineage, Link{bal(uint64(100-i), 1), uint64(100 - i)})
	}
	for name, v := range map[string]Value{
		"too long":        long,
		"top not version": {Version: 6, Lineage: ok.Lineage},
		"same version":    {Version: 5, Lineage: []Link{{bal(20, 2), 5}, {bal(10, 3), 5}}},
		"same ballot":     {Version: 5, Lineage: []Link{{bal(20, 2), 5}, {bal(20, 2), 2}}},
		"zero ballot":     {Version: 5, Lineage: []Link{{Ballot{}, 5}}},
	} {
		if err := CheckLineage(v); !errors.Is(err, ErrLineage) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
