package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func sampleRecords() []Record {
	return []Record{
		{Key: []byte("a"), Version: 1, Data: []byte("one")},
		{Key: []byte("b"), Version: 7, Deleted: true},
		{Key: []byte("b\x00"), Version: 1 << 40, Data: []byte{}},
		{Key: bytes.Repeat([]byte("k"), MaxKeySize), Version: 3, Data: bytes.Repeat([]byte{0xff}, 1000)},
	}
}

func encode(t testing.TB, h Header, recs []Record) ([]byte, Summary) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

func decode(b []byte) (Header, []Record, Summary, error) {
	r, err := NewReader(bytes.NewReader(b))
	if err != nil {
		return Header{}, nil, Summary{}, err
	}
	var recs []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), recs, r.Summary(), nil
		}
		if err != nil {
			return Header{}, nil, Summary{}, err
		}
		recs = append(recs, rec)
	}
}

func sameRecords(a, b []Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i].Key, b[i].Key) || a[i].Version != b[i].Version || a[i].Deleted != b[i].Deleted || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func TestRoundTrip(t *testing.T) {
	created := time.Date(2026, 12, 4, 1, 2, 3, 0, time.UTC)
	h := Header{Created: created, Endpoints: []string{"127.0.0.1:7400"}, Cluster: "ns/kc", Epoch: 3, KshakaVersion: "test"}
	for _, recs := range [][]Record{nil, sampleRecords()} {
		b, wsum := encode(t, h, recs)
		gh, got, rsum, err := decode(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !sameRecords(got, recs) {
			t.Fatalf("records = %+v, want %+v", got, recs)
		}
		if gh.Format != FormatName || gh.FormatVersion != FormatVersion || !gh.Created.Equal(created) || gh.Cluster != "ns/kc" || gh.Epoch != 3 || gh.Endpoints[0] != "127.0.0.1:7400" {
			t.Errorf("header = %+v", gh)
		}
		if rsum != wsum || rsum.Size != int64(len(b)) || rsum.Keys != int64(len(recs)) {
			t.Errorf("reader summary %+v, writer summary %+v, %d bytes", rsum, wsum, len(b))
		}
		// The checksum is the SHA-256 of everything before the trailer.
		trailer := 1 + uvarintLen(uint64(wsum.Keys)) + uvarintLen(uint64(wsum.Bytes)) + sha256.Size + len(endMarker)
		if sha256.Sum256(b[:len(b)-trailer]) != wsum.SHA256 {
			t.Error("the summary's SHA256 is not the hash of the bytes before the trailer")
		}
		if vs, err := Verify(bytes.NewReader(b)); err != nil || vs != wsum {
			t.Errorf("Verify = %+v, %v", vs, err)
		}
	}
	_, sum := encode(t, h, sampleRecords())
	if sum.Tombstones != 1 || sum.Bytes != 1003 {
		t.Errorf("summary = %+v, want 1 tombstone and 1003 data bytes", sum)
	}
	if len(sum.SHA256Hex()) != 64 {
		t.Errorf("SHA256Hex = %q", sum.SHA256Hex())
	}
}

func uvarintLen(v uint64) int { return len(binary.AppendUvarint(nil, v)) }

func TestWriterRefusesBadRecords(t *testing.T) {
	for name, tc := range map[string]struct {
		recs []Record
		want string
	}{
		"empty key":     {[]Record{{Key: nil, Version: 1}}, "empty key"},
		"long key":      {[]Record{{Key: make([]byte, MaxKeySize+1), Version: 1}}, "over the limit"},
		"long value":    {[]Record{{Key: []byte("k"), Version: 1, Data: make([]byte, MaxValueSize+1)}}, "over the limit"},
		"version 0":     {[]Record{{Key: []byte("k")}}, "version 0"},
		"tombstone":     {[]Record{{Key: []byte("k"), Version: 1, Deleted: true, Data: []byte("x")}}, "carries 1 bytes"},
		"out of order":  {[]Record{{Key: []byte("b"), Version: 1}, {Key: []byte("a"), Version: 1}}, "strictly increasing"},
		"duplicate key": {[]Record{{Key: []byte("a"), Version: 1}, {Key: []byte("a"), Version: 2}}, "strictly increasing"},
	} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, Header{})
		if err != nil {
			t.Fatal(err)
		}
		var last error
		for _, r := range tc.recs {
			last = w.Add(r)
		}
		if last == nil || !strings.Contains(last.Error(), tc.want) {
			t.Errorf("%s: Add = %v, want an error containing %q", name, last, tc.want)
		}
		if _, err := w.Close(); err != nil {
			t.Fatalf("%s: Close after a refused record: %v", name, err)
		}
		if _, err := Verify(bytes.NewReader(buf.Bytes())); err != nil {
			t.Errorf("%s: a refused record left a file that does not verify: %v", name, err)
		}
	}
}

// craft builds a stream by hand: the valid start of a file, then body, then
// a valid trailer for the given counts over everything before it.
func craft(body []byte, keys, nbytes uint64) []byte {
	var b []byte
	b = append(b, Magic...)
	b = append(b, FormatVersion)
	js := fmt.Sprintf(`{"format":%q,"formatVersion":%d,"created":"2026-12-04T00:00:00Z"}`, FormatName, FormatVersion)
	b = binary.AppendUvarint(b, uint64(len(js)))
	b = append(b, js...)
	b = append(b, body...)
	sum := sha256.Sum256(b)
	b = append(b, kindTrailer)
	b = binary.AppendUvarint(b, keys)
	b = binary.AppendUvarint(b, nbytes)
	b = append(b, sum[:]...)
	return append(b, endMarker...)
}

func rec(key string, version uint64, flags byte, data string) []byte {
	b := []byte{kindRecord}
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.AppendUvarint(b, version)
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}

// Every class of damage is refused with its own message and an offset.
func TestReaderRefusesCorruption(t *testing.T) {
	valid, _ := encode(t, Header{}, sampleRecords())
	headerLen := len(craft(nil, 0, 0)) - 1 - 1 - 1 - sha256.Size - len(endMarker)
	hr, err := NewReader(bytes.NewReader(valid))
	if err != nil {
		t.Fatal(err)
	}
	validHeader := int(hr.Offset())
	flip := func(i int) []byte {
		b := bytes.Clone(valid)
		b[i] ^= 0x40
		return b
	}
	cases := map[string]struct {
		data []byte
		want string
		at   int64 // -1: any
	}{
		"empty":             {nil, "truncated", 0},
		"bad magic":         {append([]byte("KSHAKABX"), valid[8:]...), "not a kshaka backup", 0},
		"other file":        {[]byte("PK\x03\x04 a zip file, not a backup"), "not a kshaka backup", 0},
		"unknown version":   {append(append([]byte(Magic), 2), valid[9:]...), "unknown format version 2", 8},
		"header too long":   {append(append([]byte(Magic), FormatVersion), binary.AppendUvarint(nil, MaxHeaderSize+1)...), "header length 65537 is over the limit", 9},
		"header not json":   {append(append(append([]byte(Magic), FormatVersion), 3), "{x}"...), "not valid JSON", 9},
		"header wrong kind": {craftHeader(`{"format":"other","formatVersion":1}`), "names format", 9},
		"key too long": {craft(func() []byte {
			b := []byte{kindRecord}
			return binary.AppendUvarint(b, MaxKeySize+1)
		}(), 0, 0), "key length 1025 is over the limit", int64(headerLen + 1)},
		"value too long": {craft(func() []byte {
			b := rec("k", 1, 0, "")
			b = b[:len(b)-1]
			return binary.AppendUvarint(b, MaxValueSize+1)
		}(), 0, 0), "value length 1048577 is over the limit", -1},
		"keys out of order":    {craft(append(rec("b", 1, 0, "x"), rec("a", 1, 0, "y")...), 2, 2), "strictly increasing", -1},
		"duplicate key":        {craft(append(rec("a", 1, 0, "x"), rec("a", 2, 0, "y")...), 2, 2), "strictly increasing", -1},
		"version 0":            {craft(rec("a", 0, 0, "x"), 1, 1), "version 0", int64(headerLen)},
		"tombstone with data":  {craft(rec("a", 1, flagDeleted, "x"), 1, 1), "tombstone", -1},
		"unknown flags":        {craft(rec("a", 1, 0x02, "x"), 1, 1), "unknown record flags 0x02", -1},
		"empty key":            {craft(rec("", 1, 0, "x"), 1, 1), "empty key", -1},
		"non-minimal uvarint":  {craft([]byte{kindRecord, 0x81, 0x00, 'a'}, 1, 0), "not minimally encoded", int64(headerLen + 1)},
		"overflowing uvarint":  {craft(append([]byte{kindRecord, 1, 'a'}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), 1, 0), "overflows 64 bits", -1},
		"unknown entry kind":   {craft([]byte{0x07}, 0, 0), "unknown entry kind 0x07", int64(headerLen)},
		"record count":         {craft(rec("a", 1, 0, "x"), 2, 1), "counts 2 records, the file holds 1", -1},
		"data bytes":           {craft(rec("a", 1, 0, "x"), 1, 5), "counts 5 bytes of data", -1},
		"flipped record byte":  {flip(validHeader + 7), "checksum mismatch", -1},
		"flipped header byte":  {flip(20), "", -1},
		"flipped checksum":     {flip(len(valid) - len(endMarker) - 3), "checksum mismatch", -1},
		"missing end marker":   {append(bytes.Clone(valid[:len(valid)-len(endMarker)]), "KSBK-EN!"...), "missing end marker", int64(len(valid) - len(endMarker))},
		"no end marker at all": {valid[:len(valid)-len(endMarker)], "truncated", int64(len(valid) - len(endMarker))},
		"data after the end":   {append(bytes.Clone(valid), 0), "data after the end marker", int64(len(valid))},
		"no trailer":           {valid[:validHeader], "truncated", int64(validHeader)},
	}
	for name, tc := range cases {
		_, err := Verify(bytes.NewReader(tc.data))
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Verify = %v, want a *CorruptError", name, err)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), fmt.Sprintf("at byte %d", ce.Offset)) {
			t.Errorf("%s: %v, want a message containing %q and the offset", name, err, tc.want)
		}
		if tc.at >= 0 && ce.Offset != tc.at {
			t.Errorf("%s: offset %d, want %d (%v)", name, ce.Offset, tc.at, err)
		}
	}
}

func craftHeader(js string) []byte {
	b := append([]byte(Magic), FormatVersion)
	b = binary.AppendUvarint(b, uint64(len(js)))
	return append(b, js...)
}

// Every truncation and every single-byte change of a valid file is refused.
func TestEveryTruncationAndFlipRefused(t *testing.T) {
	valid, _ := encode(t, Header{Cluster: "c"}, sampleRecords()[:3])
	for n := range len(valid) {
		if _, err := Verify(bytes.NewReader(valid[:n])); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d of %d bytes: Verify = %v, want ErrCorrupt", n, len(valid), err)
		}
	}
	for i := range valid {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := bytes.Clone(valid)
			b[i] ^= x
			if _, err := Verify(bytes.NewReader(b)); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("byte %d xor %#x: Verify = %v, want ErrCorrupt", i, x, err)
			}
		}
	}
}

// A read error of the underlying reader is passed on, not called corruption.
func TestReaderPassesReadErrors(t *testing.T) {
	valid, _ := encode(t, Header{}, sampleRecords())
	boom := errors.New("disk on fire")
	_, err := Verify(io.MultiReader(bytes.NewReader(valid[:40]), errReader{boom}))
	if !errors.Is(err, boom) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify = %v, want the read error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// FuzzReader: the reader never panics, and whatever it accepts is intact:
// the trailer's checksum is the hash of the bytes before it, and writing
// the records it returned again gives the same bytes (so no change to a
// valid file is accepted with other records unless its checksum matches).
func FuzzReader(f *testing.F) {
	valid, _ := encode(f, Header{Cluster: "fuzz", Created: time.Unix(0, 0)}, sampleRecords()[:3])
	f.Add(valid)
	f.Add(craft(rec("a", 1, 0, "x"), 1, 1))
	f.Add(craft(nil, 0, 0))
	f.Add([]byte(Magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, recs, sum, err := decode(b)
		if err != nil {
			return
		}
		trailer := 1 + uvarintLen(uint64(sum.Keys)) + uvarintLen(uint64(sum.Bytes)) + sha256.Size + len(endMarker)
		if sha256.Sum256(b[:len(b)-trailer]) != sum.SHA256 || sum.Size != int64(len(b)) {
			t.Fatalf("accepted a file whose checksum does not match its bytes")
		}
		r, err := NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		// Re-encode with the header exactly as stored.
		var again bytes.Buffer
		again.Write(b[:r.Offset()])
		w := &Writer{bw: bufio.NewWriter(&again), h: sha256.New()}
		w.h.Write(b[:r.Offset()])
		w.sum.Size = r.Offset()
		for _, rec := range recs {
			if err := w.Add(rec); err != nil {
				t.Fatalf("accepted a record the writer refuses: %v", err)
			}
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("accepted a file that is not the canonical encoding of its records (header %+v)", h)
		}
	})
}
