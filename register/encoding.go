package register

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The first byte of every encoded State names its layout; Decode refuses
// the ones it does not know. Format 1 has no lineage; format 2 appends it.
// AppendState writes format 1 for a value without lineage, so a record of
// such a value reads the same as before lineages existed.
const (
	recordFormat1 byte = 1
	recordFormat2 byte = 2
)

const flagTombstone byte = 1 << 0

// ErrCorrupt is returned (wrapped) by DecodeState for a record it cannot read.
var ErrCorrupt = errors.New("register: corrupt state record")

// AppendState appends the binary encoding of s to dst and returns the result.
//
// Layout: format byte, then uvarints promise.counter, promise.proposer,
// accepted.counter, accepted.proposer, value.version, a flags byte, a uvarint
// data length and the data. Format 2 then has a uvarint link count and the
// links, newest first: the first as uvarints counter, proposer, version;
// each further one as the counter's decrease from the link before, its
// proposer, and the version's decrease (docs/design.md §11). s's lineage
// must be valid (CheckLineage); DecodeState refuses one that is not.
func AppendState(dst []byte, s State) []byte {
	format := recordFormat1
	if len(s.Value.Lineage) > 0 {
		format = recordFormat2
	}
	dst = append(dst, format)
	dst = binary.AppendUvarint(dst, s.Promise.Counter)
	dst = binary.AppendUvarint(dst, s.Promise.Proposer)
	dst = binary.AppendUvarint(dst, s.Accepted.Counter)
	dst = binary.AppendUvarint(dst, s.Accepted.Proposer)
	dst = binary.AppendUvarint(dst, s.Value.Version)
	var flags byte
	if s.Value.Tombstone {
		flags |= flagTombstone
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, uint64(len(s.Value.Data)))
	dst = append(dst, s.Value.Data...)
	if format == recordFormat1 {
		return dst
	}
	l := s.Value.Lineage
	dst = binary.AppendUvarint(dst, uint64(len(l)))
	for i, k := range l {
		if i == 0 {
			dst = binary.AppendUvarint(dst, k.Ballot.Counter)
			dst = binary.AppendUvarint(dst, k.Ballot.Proposer)
			dst = binary.AppendUvarint(dst, k.Version)
			continue
		}
		dst = binary.AppendUvarint(dst, l[i-1].Ballot.Counter-k.Ballot.Counter)
		dst = binary.AppendUvarint(dst, k.Ballot.Proposer)
		dst = binary.AppendUvarint(dst, l[i-1].Version-k.Version)
	}
	return dst
}

// DecodeState decodes a record written by AppendState. The returned State
// does not share memory with buf. Any malformed input, including trailing
// bytes, returns an error wrapping ErrCorrupt.
func DecodeState(buf []byte) (State, error) {
	s, data, err := decodeHeader(buf)
	if err != nil {
		return State{}, err
	}
	if len(data) > 0 {
		s.Value.Data = append([]byte(nil), data...)
	}
	return s, nil
}

// DecodeStateHeader decodes and checks a record like DecodeState, but leaves
// Value.Data nil: it copies no data, for callers that need only the ballots,
// the version, the tombstone flag and the lineage (the acceptor's tombstone
// count at Open).
func DecodeStateHeader(buf []byte) (State, error) {
	s, _, err := decodeHeader(buf)
	return s, err
}

// decodeHeader decodes everything but the data, which it returns as a
// sub-slice of buf after checking its length.
func decodeHeader(buf []byte) (State, []byte, error) {
	d := decoder{buf: buf}
	f := d.byte()
	if d.err != nil {
		return State{}, nil, d.err
	}
	if f != recordFormat1 && f != recordFormat2 {
		return State{}, nil, fmt.Errorf("%w: unknown format %d", ErrCorrupt, f)
	}
	var s State
	s.Promise.Counter = d.uvarint()
	s.Promise.Proposer = d.uvarint()
	s.Accepted.Counter = d.uvarint()
	s.Accepted.Proposer = d.uvarint()
	s.Value.Version = d.uvarint()
	flags := d.byte()
	n := d.uvarint()
	if d.err != nil {
		return State{}, nil, d.err
	}
	if flags&^flagTombstone != 0 {
		return State{}, nil, fmt.Errorf("%w: unknown flags %#x", ErrCorrupt, flags)
	}
	s.Value.Tombstone = flags&flagTombstone != 0
	if f == recordFormat1 {
		if n != uint64(len(d.buf)) {
			return State{}, nil, fmt.Errorf("%w: data length %d, %d bytes left", ErrCorrupt, n, len(d.buf))
		}
		return s, d.buf, nil
	}
	if n > uint64(len(d.buf)) {
		return State{}, nil, fmt.Errorf("%w: data length %d, %d bytes left", ErrCorrupt, n, len(d.buf))
	}
	data := d.buf[:n]
	d.buf = d.buf[n:]
	l, err := d.lineage()
	if err != nil {
		return State{}, nil, err
	}
	if len(d.buf) != 0 {
		return State{}, nil, fmt.Errorf("%w: %d bytes after the lineage", ErrCorrupt, len(d.buf))
	}
	s.Value.Lineage = l
	if err := CheckLineage(s.Value); err != nil {
		return State{}, nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return s, data, nil
}

// lineage decodes format 2's link count and links, refusing counts above
// MaxLineage and deltas that would wrap.
func (d *decoder) lineage() ([]Link, error) {
	n := d.uvarint()
	if d.err != nil {
		return nil, d.err
	}
	if n > MaxLineage {
		return nil, fmt.Errorf("%w: %d lineage links, more than the limit of %d", ErrCorrupt, n, MaxLineage)
	}
	if n == 0 {
		return nil, nil
	}
	l := make([]Link, n)
	for i := range l {
		c, p, v := d.uvarint(), d.uvarint(), d.uvarint()
		if d.err != nil {
			return nil, d.err
		}
		if i == 0 {
			l[i] = Link{Ballot: Ballot{Counter: c, Proposer: p}, Version: v}
			continue
		}
		prev := l[i-1]
		if c > prev.Ballot.Counter || v > prev.Version {
			return nil, fmt.Errorf("%w: lineage link %d goes below zero", ErrCorrupt, i)
		}
		l[i] = Link{Ballot: Ballot{Counter: prev.Ballot.Counter - c, Proposer: p}, Version: prev.Version - v}
	}
	return l, nil
}

type decoder struct {
	buf []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.err = fmt.Errorf("%w: truncated", ErrCorrupt)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = fmt.Errorf("%w: bad varint", ErrCorrupt)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}
