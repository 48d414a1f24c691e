package register

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// recordFormat is the first byte of every encoded State. A new layout gets a
// new number; Decode refuses the ones it does not know.
const recordFormat byte = 1

const flagTombstone byte = 1 << 0

// ErrCorrupt is returned (wrapped) by DecodeState for a record it cannot read.
var ErrCorrupt = errors.New("register: corrupt state record")

// AppendState appends the binary encoding of s to dst and returns the result.
//
// Layout: format byte, then uvarints promise.counter, promise.proposer,
// accepted.counter, accepted.proposer, value.version, a flags byte, a uvarint
// data length and the data.
func AppendState(dst []byte, s State) []byte {
	dst = append(dst, recordFormat)
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
	return append(dst, s.Value.Data...)
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
// Value.Data nil: it copies nothing, for callers that need only the ballots,
// the version and the tombstone flag (the acceptor's tombstone count at Open).
func DecodeStateHeader(buf []byte) (State, error) {
	s, _, err := decodeHeader(buf)
	return s, err
}

// decodeHeader decodes everything but the data, which it returns as the
// tail of buf after checking its length.
func decodeHeader(buf []byte) (State, []byte, error) {
	d := decoder{buf: buf}
	if f := d.byte(); f != recordFormat {
		if d.err != nil {
			return State{}, nil, d.err
		}
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
	if n != uint64(len(d.buf)) {
		return State{}, nil, fmt.Errorf("%w: data length %d, %d bytes left", ErrCorrupt, n, len(d.buf))
	}
	s.Value.Tombstone = flags&flagTombstone != 0
	return s, d.buf, nil
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
