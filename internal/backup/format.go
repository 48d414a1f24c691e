package backup

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/kshaka-io/kshaka/proposer"
)

// The layout of a backup file (all integers are minimal uvarints):
//
//	magic "KSHAKABK" | format version (1 byte) | header length | header JSON
//	record*: kindRecord | key length | key | version | flags | data length | data
//	trailer: kindTrailer | record count | data bytes | SHA-256 (32 bytes) | endMarker
//
// The SHA-256 covers every byte before the trailer's kind byte.
const (
	// Magic opens every backup file.
	Magic = "KSHAKABK"
	// FormatVersion is the version of the layout this package writes and
	// reads.
	FormatVersion = 1
	// FormatName is Header.Format.
	FormatName = "kshaka-backup"
	// MaxHeaderSize bounds the JSON header.
	MaxHeaderSize = 64 << 10
	// MaxKeySize and MaxValueSize bound a record's key and data: the
	// proposer's limits, so every record can be restored.
	MaxKeySize   = proposer.MaxKeySize
	MaxValueSize = proposer.MaxValueSize

	endMarker   = "KSBK-END"
	kindRecord  = 0x01
	kindTrailer = 0x02
	flagDeleted = 0x01
)

// ErrCorrupt: the stream is not a complete, intact backup. The error is a
// *CorruptError with the byte offset.
var ErrCorrupt = errors.New("backup: corrupt")

// CorruptError says where and how a backup stream is broken.
type CorruptError struct {
	// Offset is the byte offset in the stream where the problem starts.
	Offset int64
	// Reason says what is wrong.
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("backup file corrupt at byte %d: %s", e.Offset, e.Reason)
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Header describes a backup; it is stored as JSON at the start of the file.
// Unknown fields are ignored when reading, so later versions may add some.
type Header struct {
	// Format is FormatName; set by NewWriter.
	Format string `json:"format"`
	// FormatVersion is the layout version; set by NewWriter.
	FormatVersion int `json:"formatVersion"`
	// Created is when the backup started (UTC); NewWriter sets it when zero.
	Created time.Time `json:"created"`
	// Endpoints are the addresses the backup was read from, if given.
	Endpoints []string `json:"endpoints,omitempty"`
	// Cluster names the source cluster, if given (e.g. namespace/name).
	Cluster string `json:"cluster,omitempty"`
	// Epoch is the source configuration's epoch when the backup started.
	Epoch uint64 `json:"epoch,omitempty"`
	// KshakaVersion is the version of the tool that wrote the file.
	KshakaVersion string `json:"kshakaVersion,omitempty"`
}

// Record is one key's register value: its latest chosen value with its
// version, or its tombstone (Deleted, no Data) with the version of the
// delete.
type Record struct {
	Key     []byte
	Version uint64
	Deleted bool
	Data    []byte
}

// Summary is what a complete backup holds.
type Summary struct {
	// Keys counts the records, tombstones included.
	Keys int64
	// Tombstones counts the records of deleted keys.
	Tombstones int64
	// Bytes is the total length of the records' data.
	Bytes int64
	// Size is the length of the whole file.
	Size int64
	// SHA256 is the checksum stored in the trailer: the SHA-256 of every
	// byte before the trailer (not of the whole file).
	SHA256 [sha256.Size]byte
}

// SHA256Hex is SHA256 in lower-case hex.
func (s Summary) SHA256Hex() string { return hex.EncodeToString(s.SHA256[:]) }

// checkRecord reports what is wrong with r, given the key before it (nil
// for the first record).
func checkRecord(r Record, prev []byte) string {
	switch {
	case len(r.Key) == 0:
		return "empty key"
	case len(r.Key) > MaxKeySize:
		return fmt.Sprintf("key of %d bytes is over the limit of %d", len(r.Key), MaxKeySize)
	case len(r.Data) > MaxValueSize:
		return fmt.Sprintf("value of %d bytes is over the limit of %d", len(r.Data), MaxValueSize)
	case r.Version == 0:
		return fmt.Sprintf("key %q has version 0", r.Key)
	case r.Deleted && len(r.Data) > 0:
		return fmt.Sprintf("tombstone of key %q carries %d bytes of data", r.Key, len(r.Data))
	case prev != nil && bytes.Compare(prev, r.Key) >= 0:
		return fmt.Sprintf("key %q does not follow key %q: keys must be strictly increasing", r.Key, prev)
	}
	return ""
}

// Writer writes a backup stream. Records must be added in strictly
// increasing key order. It buffers; nothing is complete until Close.
type Writer struct {
	bw   *bufio.Writer
	h    hash.Hash
	sum  Summary
	prev []byte
	err  error // sticky: the first error
	buf  []byte
}

// NewWriter writes the magic, the format version and h to w.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	h.Format, h.FormatVersion = FormatName, FormatVersion
	if h.Created.IsZero() {
		h.Created = time.Now()
	}
	h.Created = h.Created.UTC()
	js, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("while encoding the backup header: %w", err)
	}
	if len(js) > MaxHeaderSize {
		return nil, fmt.Errorf("backup header of %d bytes is over the limit of %d", len(js), MaxHeaderSize)
	}
	bw := &Writer{bw: bufio.NewWriterSize(w, 256<<10), h: sha256.New()}
	bw.buf = append(bw.buf[:0], Magic...)
	bw.buf = append(bw.buf, FormatVersion)
	bw.buf = binary.AppendUvarint(bw.buf, uint64(len(js)))
	bw.buf = append(bw.buf, js...)
	bw.emit(bw.buf, true)
	if bw.err != nil {
		return nil, bw.err
	}
	return bw, nil
}

func (w *Writer) emit(b []byte, hashed bool) {
	if w.err != nil {
		return
	}
	if hashed {
		w.h.Write(b)
	}
	n, err := w.bw.Write(b)
	w.sum.Size += int64(n)
	if err != nil {
		w.err = fmt.Errorf("while writing the backup: %w", err)
	}
}

// Add appends r. A record the reader would refuse (empty or oversized key,
// oversized data, version 0, a tombstone with data, a key not after the
// previous one) is refused and nothing is written.
func (w *Writer) Add(r Record) error {
	if w.err != nil {
		return w.err
	}
	if why := checkRecord(r, w.prev); why != "" {
		return fmt.Errorf("backup: refusing record: %s", why)
	}
	b := append(w.buf[:0], kindRecord)
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	b = binary.AppendUvarint(b, r.Version)
	var flags byte
	if r.Deleted {
		flags |= flagDeleted
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(r.Data)))
	w.emit(b, true)
	w.emit(r.Data, true)
	w.buf = b[:0]
	if w.err != nil {
		return w.err
	}
	w.prev = append(w.prev[:0], r.Key...)
	w.sum.Keys++
	w.sum.Bytes += int64(len(r.Data))
	if r.Deleted {
		w.sum.Tombstones++
	}
	return nil
}

// Summary returns what was added so far (SHA256 is set by Close).
func (w *Writer) Summary() Summary { return w.sum }

// Close writes the trailer and the end marker and flushes. It does not
// close the underlying writer.
func (w *Writer) Close() (Summary, error) {
	if w.err != nil {
		return Summary{}, w.err
	}
	copy(w.sum.SHA256[:], w.h.Sum(nil))
	b := append(w.buf[:0], kindTrailer)
	b = binary.AppendUvarint(b, uint64(w.sum.Keys))
	b = binary.AppendUvarint(b, uint64(w.sum.Bytes))
	b = append(b, w.sum.SHA256[:]...)
	b = append(b, endMarker...)
	w.emit(b, false)
	if w.err == nil {
		if err := w.bw.Flush(); err != nil {
			w.err = fmt.Errorf("while writing the backup: %w", err)
		}
	}
	if w.err != nil {
		return Summary{}, w.err
	}
	w.err = errors.New("backup: writer closed")
	return w.sum, nil
}

// Reader reads a backup stream written by Writer, checking everything: the
// magic and format version, every length against the limits, the key
// order, the trailer's counts and checksum, the end marker, and that
// nothing follows it. Records are returned as they are read, before the
// checksum at the end is checked: to act on a backup only once it is known
// to be intact, Verify it first.
type Reader struct {
	br   *bufio.Reader
	h    hash.Hash
	off  int64
	hdr  Header
	sum  Summary
	prev []byte
	done bool
	err  error // sticky
}

// NewReader reads and checks the start of a backup stream, up to and
// including the header.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{br: bufio.NewReaderSize(r, 256<<10), h: sha256.New()}
	magic, err := rd.bytes(len(Magic), true)
	if err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, &CorruptError{Offset: 0, Reason: fmt.Sprintf("not a kshaka backup: the file starts with %q, not %q", magic, Magic)}
	}
	v, err := rd.byte(true)
	if err != nil {
		return nil, err
	}
	if v != FormatVersion {
		return nil, &CorruptError{Offset: rd.off - 1, Reason: fmt.Sprintf("unknown format version %d; this kshaka reads version %d (use the kshaka that wrote the backup, or a newer one)", v, FormatVersion)}
	}
	at := rd.off
	n, err := rd.uvarint(true, MaxHeaderSize, "header length")
	if err != nil {
		return nil, err
	}
	js, err := rd.bytes(int(n), true)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(js, &rd.hdr); err != nil {
		return nil, &CorruptError{Offset: at, Reason: fmt.Sprintf("the header is not valid JSON: %v", err)}
	}
	if rd.hdr.Format != FormatName || rd.hdr.FormatVersion != FormatVersion {
		return nil, &CorruptError{Offset: at, Reason: fmt.Sprintf("the header names format %q version %d, not %q version %d", rd.hdr.Format, rd.hdr.FormatVersion, FormatName, FormatVersion)}
	}
	return rd, nil
}

// Header returns the backup's header.
func (r *Reader) Header() Header { return r.hdr }

// Offset returns how many bytes were read so far.
func (r *Reader) Offset() int64 { return r.off }

// Summary returns what was read so far; once Next returned io.EOF it is the
// verified summary of the whole backup.
func (r *Reader) Summary() Summary { return r.sum }

// Next returns the next record, or io.EOF after the trailer was read and
// checked. Any other error is a *CorruptError (or the underlying reader's
// error, wrapped); it is returned again by later calls.
func (r *Reader) Next() (Record, error) {
	if r.err != nil {
		return Record{}, r.err
	}
	if r.done {
		return Record{}, io.EOF
	}
	rec, err := r.next()
	if err != nil {
		r.err = err
		return Record{}, err
	}
	if rec == nil {
		r.done = true
		return Record{}, io.EOF
	}
	return *rec, nil
}

func (r *Reader) next() (*Record, error) {
	at := r.off
	kind, err := r.byte(false)
	if err != nil {
		return nil, err
	}
	switch kind {
	case kindRecord:
		r.h.Write([]byte{kind})
		return r.record(at)
	case kindTrailer:
		return nil, r.trailer(at)
	}
	return nil, &CorruptError{Offset: at, Reason: fmt.Sprintf("unknown entry kind 0x%02x (want a record 0x%02x or the trailer 0x%02x)", kind, kindRecord, kindTrailer)}
}

func (r *Reader) record(at int64) (*Record, error) {
	kl, err := r.uvarint(true, MaxKeySize, "key length")
	if err != nil {
		return nil, err
	}
	key, err := r.bytes(int(kl), true)
	if err != nil {
		return nil, err
	}
	version, err := r.uvarint(true, 1<<64-1, "version")
	if err != nil {
		return nil, err
	}
	flags, err := r.byte(true)
	if err != nil {
		return nil, err
	}
	if flags&^flagDeleted != 0 {
		return nil, &CorruptError{Offset: r.off - 1, Reason: fmt.Sprintf("unknown record flags 0x%02x", flags)}
	}
	dl, err := r.uvarint(true, MaxValueSize, "value length")
	if err != nil {
		return nil, err
	}
	data, err := r.bytes(int(dl), true)
	if err != nil {
		return nil, err
	}
	rec := Record{Key: key, Version: version, Deleted: flags&flagDeleted != 0, Data: data}
	if why := checkRecord(rec, r.prev); why != "" {
		return nil, &CorruptError{Offset: at, Reason: why}
	}
	r.prev = key
	r.sum.Keys++
	r.sum.Bytes += int64(len(data))
	if rec.Deleted {
		rec.Data = nil
		r.sum.Tombstones++
	}
	return &rec, nil
}

func (r *Reader) trailer(at int64) error {
	var sum [sha256.Size]byte
	copy(sum[:], r.h.Sum(nil))
	keys, err := r.uvarint(false, 1<<63-1, "record count")
	if err != nil {
		return err
	}
	if int64(keys) != r.sum.Keys {
		return &CorruptError{Offset: at, Reason: fmt.Sprintf("the trailer counts %d records, the file holds %d", keys, r.sum.Keys)}
	}
	nb, err := r.uvarint(false, 1<<63-1, "data bytes")
	if err != nil {
		return err
	}
	if int64(nb) != r.sum.Bytes {
		return &CorruptError{Offset: at, Reason: fmt.Sprintf("the trailer counts %d bytes of data, the records hold %d", nb, r.sum.Bytes)}
	}
	shaAt := r.off
	stored, err := r.bytes(sha256.Size, false)
	if err != nil {
		return err
	}
	if !bytes.Equal(stored, sum[:]) {
		return &CorruptError{Offset: shaAt, Reason: fmt.Sprintf("checksum mismatch: the trailer holds SHA-256 %x, the bytes before it hash to %x", stored, sum)}
	}
	endAt := r.off
	end, err := r.bytes(len(endMarker), false)
	if err != nil {
		return err
	}
	if string(end) != endMarker {
		return &CorruptError{Offset: endAt, Reason: fmt.Sprintf("missing end marker: found %q, want %q", end, endMarker)}
	}
	if _, err := r.br.ReadByte(); err == nil {
		return &CorruptError{Offset: r.off, Reason: "data after the end marker"}
	} else if err != io.EOF {
		return fmt.Errorf("while reading the backup at byte %d: %w", r.off, err)
	}
	r.sum.SHA256 = sum
	r.sum.Size = r.off
	return nil
}

// eof turns an early end of the stream into a CorruptError at the offset
// where the stream ended.
func (r *Reader) eof(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &CorruptError{Offset: r.off, Reason: "truncated: the file ends before the trailer and end marker (was the backup interrupted?)"}
	}
	return fmt.Errorf("while reading the backup at byte %d: %w", r.off, err)
}

func (r *Reader) byte(hashed bool) (byte, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		return 0, r.eof(err)
	}
	r.off++
	if hashed {
		r.h.Write([]byte{b})
	}
	return b, nil
}

func (r *Reader) bytes(n int, hashed bool) ([]byte, error) {
	b := make([]byte, n)
	m, err := io.ReadFull(r.br, b)
	r.off += int64(m)
	if hashed {
		r.h.Write(b[:m])
	}
	if err != nil {
		return nil, r.eof(err)
	}
	return b, nil
}

// uvarint reads a minimally encoded uvarint of at most limit.
func (r *Reader) uvarint(hashed bool, limit uint64, what string) (uint64, error) {
	at := r.off
	var v uint64
	var s uint
	for i := 0; ; i++ {
		b, err := r.byte(hashed)
		if err != nil {
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, &CorruptError{Offset: at, Reason: fmt.Sprintf("%s overflows 64 bits", what)}
		}
		if b < 0x80 {
			if i > 0 && b == 0 {
				return 0, &CorruptError{Offset: at, Reason: fmt.Sprintf("%s is not minimally encoded", what)}
			}
			v |= uint64(b) << s
			break
		}
		v |= uint64(b&0x7f) << s
		s += 7
	}
	if v > limit {
		return 0, &CorruptError{Offset: at, Reason: fmt.Sprintf("%s %d is over the limit of %d", what, v, limit)}
	}
	return v, nil
}

// Verify reads the whole stream and returns its summary, or the first
// problem found.
func Verify(r io.Reader) (Summary, error) {
	rd, err := NewReader(r)
	if err != nil {
		return Summary{}, err
	}
	for {
		if _, err := rd.Next(); err == io.EOF {
			return rd.Summary(), nil
		} else if err != nil {
			return Summary{}, err
		}
	}
}
