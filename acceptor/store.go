package acceptor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/protobuf/proto"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// Key layout. User keys live under prefixUser so that listing them never
// meets metadata; metadata lives under prefixMeta.
const (
	prefixUser byte = 'k'
	prefixMeta byte = 'm'
)

var (
	userLower = []byte{prefixUser}
	userUpper = []byte{prefixUser + 1}

	metaIncarnation = []byte{prefixMeta, '/', 'i', 'n', 'c'}
	metaConfig      = []byte{prefixMeta, '/', 'c', 'f', 'g'}
	metaFloor       = []byte{prefixMeta, '/', 'f', 'l', 'r'}
)

// configFormat is the first byte of the stored configuration record; the rest
// is the protobuf encoding of kshakav1.Config.
const configFormat byte = 1

func storageKey(dst, key []byte) []byte {
	dst = append(dst[:0], prefixUser)
	return append(dst, key...)
}

// store is the Pebble side of the acceptor: records, metadata, sync counting
// and the translation of Pebble's fatal errors into ordinary errors.
//
// Its methods return storage errors; the acceptor takes itself out of service
// on any of them.
type store struct {
	db *pebble.DB
	// onSync observes each synced commit (count and latency).
	onSync func(time.Duration)
}

// pebbleFatal is the panic value pebbleLogger.Fatalf raises, so that the
// goroutine that hit the error can recover it (see recoverFatal).
type pebbleFatal struct{ err error }

// pebbleLogger routes Pebble's log lines to slog. Pebble calls Fatalf for
// errors it cannot continue from, among them a failed WAL write or sync in
// the committing goroutine; the default logger exits the process. Ours takes
// the acceptor out of service first and then panics with pebbleFatal: the
// acceptor's own calls recover it and report a storage error, while a fatal
// error in one of Pebble's background goroutines still crashes the process
// (as with Pebble's default logger), which is the safe outcome.
type pebbleLogger struct {
	log  *slog.Logger
	fail func(error)
}

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble", "detail", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble", "detail", fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf("pebble fatal error: %s", fmt.Sprintf(format, args...))
	l.fail(err)
	panic(pebbleFatal{err: err})
}

// recoverFatal turns a pebbleFatal panic into *errp. Other panics continue.
func recoverFatal(errp *error) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(pebbleFatal)
	if !ok {
		panic(r)
	}
	*errp = f.err
}

// get returns the state of key; the zero State when it was never written.
func (s *store) get(skey []byte) (st register.State, found bool, err error) {
	defer recoverFatal(&err)
	buf, closer, err := s.db.Get(skey)
	if errors.Is(err, pebble.ErrNotFound) {
		return register.State{}, false, nil
	}
	if err != nil {
		return register.State{}, false, fmt.Errorf("while reading key %s: %w", quoteKey(skey[1:]), err)
	}
	defer closer.Close()
	st, err = register.DecodeState(buf)
	if err != nil {
		return register.State{}, false, fmt.Errorf("while decoding key %s: %w", quoteKey(skey[1:]), err)
	}
	return st, true, nil
}

// commit applies b with Sync and returns once it is durable.
func (s *store) commit(b *pebble.Batch) (err error) {
	defer recoverFatal(&err)
	start := time.Now()
	if err = b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("while committing a batch of %d records: %w", b.Count(), err)
	}
	s.onSync(time.Since(start))
	return nil
}

// commitNoSync applies b without waiting for the disk: the records reach the
// WAL, and the disk with the next synced commit (or the OS's writeback).
// Only promises below the durable floor are written this way.
func (s *store) commitNoSync(b *pebble.Batch) (err error) {
	defer recoverFatal(&err)
	if err = b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("while committing a batch of %d records: %w", b.Count(), err)
	}
	return nil
}

// commitAs commits b with Sync when sync is set, else without.
func (s *store) commitAs(b *pebble.Batch, sync bool) error {
	if sync {
		return s.commit(b)
	}
	return s.commitNoSync(b)
}

// loadFloor reads the durable promise floor (0 when absent).
func (s *store) loadFloor() (floor uint64, err error) {
	defer recoverFatal(&err)
	buf, closer, err := s.db.Get(metaFloor)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("while reading the promise floor: %w", err)
	}
	defer closer.Close()
	if len(buf) != 8 {
		return 0, fmt.Errorf("%w: promise floor record has %d bytes, want 8", register.ErrCorrupt, len(buf))
	}
	return binary.BigEndian.Uint64(buf), nil
}

// loadMeta reads the incarnation (0 when absent) and configuration.
func (s *store) loadMeta() (inc uint64, cfg membership.Config, err error) {
	defer recoverFatal(&err)
	buf, closer, err := s.db.Get(metaIncarnation)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return 0, cfg, fmt.Errorf("while reading the incarnation: %w", err)
	default:
		inc, err = decodeIncarnation(buf)
		closer.Close()
		if err != nil {
			return 0, cfg, err
		}
	}
	buf, closer, err = s.db.Get(metaConfig)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		return inc, cfg, nil
	case err != nil:
		return 0, cfg, fmt.Errorf("while reading the configuration: %w", err)
	}
	defer closer.Close()
	cfg, err = decodeConfig(buf)
	return inc, cfg, err
}

func decodeIncarnation(buf []byte) (uint64, error) {
	if len(buf) != 8 {
		return 0, fmt.Errorf("%w: incarnation record has %d bytes, want 8", register.ErrCorrupt, len(buf))
	}
	inc := binary.BigEndian.Uint64(buf)
	if inc == 0 {
		return 0, fmt.Errorf("%w: incarnation is zero", register.ErrCorrupt)
	}
	return inc, nil
}

func encodeIncarnation(inc uint64) []byte { return binary.BigEndian.AppendUint64(nil, inc) }

func encodeConfig(cfg membership.Config) ([]byte, error) {
	buf, err := proto.MarshalOptions{Deterministic: true}.Marshal(wire.ConfigToProto(cfg))
	if err != nil {
		return nil, fmt.Errorf("while encoding the configuration: %w", err)
	}
	return append([]byte{configFormat}, buf...), nil
}

func decodeConfig(buf []byte) (membership.Config, error) {
	if len(buf) == 0 || buf[0] != configFormat {
		return membership.Config{}, fmt.Errorf("%w: unknown configuration record format", register.ErrCorrupt)
	}
	var pc kshakav1.Config
	if err := proto.Unmarshal(buf[1:], &pc); err != nil {
		return membership.Config{}, fmt.Errorf("%w: configuration record: %v", register.ErrCorrupt, err)
	}
	return wire.ConfigFromProto(&pc), nil
}

// putMeta writes one metadata record with Sync.
func (s *store) putMeta(key, value []byte) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(key, value, nil); err != nil {
		return fmt.Errorf("while preparing metadata %q: %w", key, err)
	}
	return s.commit(b)
}

// countRecords counts the user keys and, of those, the tombstones (one pass
// over the records, at Open; only each record's header is decoded). A record
// that does not decode is counted as a key and in corrupt, not refused here:
// it fails like any storage error when a request reads it.
func (s *store) countRecords() (keys, tombstones, corrupt int64, err error) {
	defer recoverFatal(&err)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: userLower, UpperBound: userUpper})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("while counting keys: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, verr := it.ValueAndErr()
		if verr != nil {
			err = fmt.Errorf("while reading key %s: %w", quoteKey(it.Key()[1:]), verr)
			break
		}
		keys++
		switch st, derr := register.DecodeStateHeader(v); {
		case derr != nil:
			corrupt++
		case st.Value.Tombstone:
			tombstones++
		}
	}
	if cerr := errors.Join(it.Error(), it.Close()); err == nil && cerr != nil {
		err = fmt.Errorf("while counting keys: %w", cerr)
	}
	return keys, tombstones, corrupt, err
}

// scan calls fn for each user key greater than after, in ascending order,
// until fn returns false. The key passed to fn is only valid during the call.
func (s *store) scan(after []byte, fn func(key []byte) bool) error {
	return s.scanRecords(after, false, func(k, _ []byte) bool { return fn(k) })
}

// scanRecords calls fn for each user key greater than after, in ascending
// order, with its record when values is set (nil otherwise), until fn
// returns false. Key and record are only valid during the call.
func (s *store) scanRecords(after []byte, values bool, fn func(key, rec []byte) bool) (err error) {
	defer recoverFatal(&err)
	lower := userLower
	if len(after) > 0 {
		// The smallest storage key strictly greater than after.
		lower = append(storageKey(nil, after), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: userUpper})
	if err != nil {
		return fmt.Errorf("while listing keys: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if !bytes.HasPrefix(k, userLower) {
			break
		}
		var rec []byte
		if values {
			v, verr := it.ValueAndErr()
			if verr != nil {
				err = fmt.Errorf("while reading key %s: %w", quoteKey(k[1:]), verr)
				break
			}
			rec = v
		}
		if !fn(k[1:], rec) {
			break
		}
	}
	if cerr := errors.Join(it.Error(), it.Close()); err == nil && cerr != nil {
		err = fmt.Errorf("while listing keys: %w", cerr)
	}
	return err
}

// quoteKey prints a key for an error message, shortened when long.
func quoteKey(k []byte) string {
	const max = 64
	if len(k) > max {
		return fmt.Sprintf("%q… (%d bytes)", k[:max], len(k))
	}
	return fmt.Sprintf("%q", k)
}
