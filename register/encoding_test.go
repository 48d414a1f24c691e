package register

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"testing/quick"
)

func randomState(r *rand.Rand) State {
	u := func() uint64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return math.MaxUint64
		case 2:
			return uint64(r.IntN(300))
		}
		return r.Uint64()
	}
	s := State{
		Promise:  Ballot{Counter: u(), Proposer: u()},
		Accepted: Ballot{Counter: u(), Proposer: u()},
		Value:    Value{Version: u(), Tombstone: r.IntN(3) == 0},
	}
	if n := r.IntN(40); n > 0 {
		s.Value.Data = make([]byte, n)
		for i := range s.Value.Data {
			s.Value.Data[i] = byte(r.Uint32())
		}
	}
	s.Value.Lineage = randomLineage(r, s.Value.Version)
	return s
}

// randomLineage returns a valid lineage for a value of version v (none for
// version 0 and, at random, none at all), with extreme counters.
func randomLineage(r *rand.Rand, v uint64) []Link {
	if v == 0 || r.IntN(3) == 0 {
		return nil
	}
	n := 1 + r.IntN(MaxLineage)
	l := make([]Link, 0, n)
	b := Ballot{Counter: 1 + r.Uint64N(math.MaxUint64), Proposer: 1 + r.Uint64N(math.MaxUint64)}
	if r.IntN(4) == 0 {
		b = Ballot{Counter: math.MaxUint64, Proposer: math.MaxUint64}
	}
	for len(l) < n && v > 0 {
		l = append(l, Link{Ballot: b, Version: v})
		dv := 1 + r.Uint64N(3)
		if r.IntN(5) == 0 {
			dv = 1 + r.Uint64N(v)
		}
		if dv >= v {
			break
		}
		v -= dv
		switch {
		case r.IntN(3) == 0 && b.Proposer > 1: // same counter, lower proposer
			b.Proposer = 1 + r.Uint64N(b.Proposer-1)
		case b.Counter > 1:
			b.Counter -= 1 + r.Uint64N(min(b.Counter-1, 1<<20))
			b.Proposer = 1 + r.Uint64N(math.MaxUint64)
		default:
			return l
		}
	}
	return l
}

// TestEncodingRoundTrip: DecodeState(AppendState(s)) == s for random states
// (including empty/nil data, tombstones and extreme counters), with and
// without a prefix in dst.
func TestEncodingRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 50000; i++ {
		s := randomState(r)
		prefix := []byte("prefix")
		buf := AppendState(append([]byte(nil), prefix...), s)
		if !bytes.HasPrefix(buf, prefix) {
			t.Fatal("AppendState clobbered dst")
		}
		got, err := DecodeState(buf[len(prefix):])
		if err != nil {
			t.Fatalf("DecodeState(AppendState(%+v)): %v", s, err)
		}
		if !sameState(got, s) || got.Value.Tombstone != s.Value.Tombstone {
			t.Fatalf("round trip: %+v -> %+v", s, got)
		}
		h, err := DecodeStateHeader(buf[len(prefix):])
		if want := (State{Promise: s.Promise, Accepted: s.Accepted, Value: Value{Version: s.Value.Version, Tombstone: s.Value.Tombstone}}); err != nil ||
			h.Promise != want.Promise || h.Accepted != want.Accepted || h.Value.Version != want.Value.Version ||
			h.Value.Tombstone != want.Value.Tombstone || h.Value.Data != nil {
			t.Fatalf("DecodeStateHeader(AppendState(%+v)) = %+v, %v", s, h, err)
		}
	}
	roundTrip := func(pc, pp, ac, ap, ver uint64, data []byte, tomb bool) bool {
		s := State{Promise: Ballot{pc, pp}, Accepted: Ballot{ac, ap}, Value: Value{Version: ver, Data: data, Tombstone: tomb}}
		got, err := DecodeState(AppendState(nil, s))
		return err == nil && sameState(got, s)
	}
	if err := quick.Check(roundTrip, &quick.Config{MaxCount: 20000}); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeDoesNotAlias(t *testing.T) {
	buf := AppendState(nil, State{Value: Value{Version: 1, Data: []byte("abc")}})
	s, err := DecodeState(buf)
	if err != nil {
		t.Fatal(err)
	}
	buf[len(buf)-1] = 'z'
	if string(s.Value.Data) != "abc" {
		t.Fatal("decoded data shares memory with the input")
	}
}

// TestDecodeGarbage: every malformed record is refused with ErrCorrupt.
func TestDecodeGarbage(t *testing.T) {
	good := AppendState(nil, State{Promise: bal(300, 2), Accepted: bal(299, 1), Value: Value{Version: 7, Data: []byte("hello")}})
	cases := map[string][]byte{
		"empty":          nil,
		"unknown format": append([]byte{3}, good[1:]...),
		"format zero":    {0},
		"trailing byte":  append(append([]byte(nil), good...), 0),
		"unknown flag":   {recordFormat1, 0, 0, 0, 0, 0, 0x82, 0},
		"overlong varint": append([]byte{recordFormat1},
			0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"length beyond data": {recordFormat1, 0, 0, 0, 0, 0, 0, 5, 'a'},
	}
	for n := 0; n < len(good); n++ {
		cases[fmt.Sprintf("truncated to %d bytes", n)] = good[:n]
	}
	for name, buf := range cases {
		if _, err := DecodeState(buf); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeState(%x) error = %v, want ErrCorrupt", name, buf, err)
		}
		if _, err := DecodeStateHeader(buf); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeStateHeader(%x) error = %v, want ErrCorrupt", name, buf, err)
		}
	}
	// The layout documented on AppendState, spelled out.
	want := []byte{recordFormat1}
	for _, v := range []uint64{300, 2, 299, 1, 7} {
		want = binary.AppendUvarint(want, v)
	}
	want = append(want, 0, 5)
	want = append(want, "hello"...)
	if !bytes.Equal(good, want) {
		t.Fatalf("layout changed:\n got %x\nwant %x", good, want)
	}
}

// FuzzDecodeState: DecodeState never panics; anything it accepts re-encodes
// to a record that decodes to the same State; anything it refuses wraps
// ErrCorrupt. The seed corpus lives in testdata/fuzz/FuzzDecodeState.
func FuzzDecodeState(f *testing.F) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 8; i++ {
		f.Add(AppendState(nil, randomState(r)))
	}
	f.Add([]byte{})
	f.Add([]byte{recordFormat1})
	f.Fuzz(func(t *testing.T, buf []byte) {
		s, err := DecodeState(buf)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again := AppendState(nil, s)
		s2, err := DecodeState(again)
		if err != nil || !sameState(s, s2) || s.Value.Tombstone != s2.Value.Tombstone {
			t.Fatalf("re-encoding %+v: %+v, %v", s, s2, err)
		}
		// Non-canonical varints decode too, so the bytes may differ, but
		// the canonical encoding is never longer than the input.
		if len(again) > len(buf) {
			t.Fatalf("canonical encoding %x longer than input %x", again, buf)
		}
	})
}

// TestFormat1StillDecodes: a record written before lineages existed
// (testdata/format1.bin, made by the format-1 AppendState) decodes, with no
// lineage, and a value without lineage is still written in format 1.
func TestFormat1StillDecodes(t *testing.T) {
	buf, err := os.ReadFile("testdata/format1.bin")
	if err != nil {
		t.Fatal(err)
	}
	s, err := DecodeState(buf)
	want := State{Promise: bal(300, 2), Accepted: bal(299, 1), Value: Value{Version: 7, Data: []byte("hello")}}
	if err != nil || !sameState(s, want) || s.Value.Lineage != nil {
		t.Fatalf("DecodeState(format 1) = %+v, %v; want %+v", s, err, want)
	}
	if again := AppendState(nil, s); !bytes.Equal(again, buf) {
		t.Fatalf("a value without lineage re-encodes as %x, not as the format-1 record %x", again, buf)
	}
}

// TestLineageEncoding spells out format 2 and refuses every malformed
// lineage with ErrCorrupt.
func TestLineageEncoding(t *testing.T) {
	v := Value{Version: 7, Data: []byte("x"), Lineage: []Link{{bal(50, 9), 7}, {bal(50, 3), 5}, {bal(40, 8), 4}}}
	good := AppendState(nil, State{Promise: bal(60, 1), Accepted: bal(55, 9), Value: v})
	want := []byte{recordFormat2}
	for _, u := range []uint64{60, 1, 55, 9, 7} {
		want = binary.AppendUvarint(want, u)
	}
	want = append(want, 0, 1, 'x', 3)
	for _, u := range []uint64{50, 9, 7, 0, 3, 2, 10, 8, 1} {
		want = binary.AppendUvarint(want, u)
	}
	if !bytes.Equal(good, want) {
		t.Fatalf("layout:\n got %x\nwant %x", good, want)
	}
	if s, err := DecodeState(good); err != nil || !slices.Equal(s.Value.Lineage, v.Lineage) {
		t.Fatalf("DecodeState = %+v, %v", s, err)
	}
	head := func(links ...uint64) []byte {
		b := []byte{recordFormat2, 60, 1, 55, 9, 7, 0, 1, 'x'}
		for _, u := range links {
			b = binary.AppendUvarint(b, u)
		}
		return b
	}
	for name, buf := range map[string][]byte{
		"too many links":        head(MaxLineage+1, 50, 9, 7),
		"top is not the value":  head(1, 50, 9, 6),
		"version does not fall": head(2, 50, 9, 7, 1, 9, 0),
		"ballot does not fall":  head(2, 50, 9, 7, 0, 9, 1),
		"ballot rises":          head(2, 50, 3, 7, 0, 9, 1),
		"counter wraps":         head(2, 50, 9, 7, 51, 9, 1),
		"version wraps":         head(2, 50, 9, 7, 1, 9, 8),
		"version zero":          head(2, 50, 9, 7, 1, 9, 7),
		"invalid ballot":        head(1, 50, 0, 7),
		"truncated link":        head(2, 50, 9, 7, 1),
		"trailing bytes":        append(head(1, 50, 9, 7), 0),
		"data beyond the end":   {recordFormat2, 0, 0, 0, 0, 0, 0, 5, 'a'},
	} {
		if _, err := DecodeState(buf); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeState(%x) = %v, want ErrCorrupt", name, buf, err)
		}
		if _, err := DecodeStateHeader(buf); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: DecodeStateHeader(%x) = %v, want ErrCorrupt", name, buf, err)
		}
	}
}
