package acceptor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/kshaka-io/kshaka/internal/acceptcore"
)

// Defaults of Options. Sizes are in bytes.
const (
	DefaultMaxKeySize     = acceptcore.DefaultMaxKeySize   // 1 KiB
	DefaultMaxValueSize   = acceptcore.DefaultMaxValueSize // 1 MiB
	DefaultMaxBatchItems  = acceptcore.DefaultMaxBatchItems
	DefaultMaxMessageSize = 64 << 20 // 64 MiB
	DefaultLockStripes    = 4096

	DefaultCacheSize                   = 32 << 20
	DefaultMemTableSize                = 16 << 20
	DefaultMemTableStopWritesThreshold = 4
	DefaultL0CompactionThreshold       = 2
	DefaultL0StopWritesThreshold       = 1000
	DefaultLBaseMaxBytes               = 64 << 20
	DefaultMaxOpenFiles                = 4096
	DefaultBytesPerSync                = 512 << 10
	DefaultPromiseFloorStep            = acceptcore.DefaultPromiseFloorStep
	DefaultMaxBallotLead               = acceptcore.DefaultMaxBallotLead // ten minutes
	DefaultHandshakeTimeout            = 10 * time.Second
	DefaultMaxConcurrentStreams        = 1024

	// maxKeySizeLimit bounds MaxKeySize: keys are small identifiers, and the
	// storage key adds a prefix byte.
	maxKeySizeLimit = 64 << 10
)

// Options configure an Acceptor. The zero value of every field means "use
// the default"; EnsureDefaults fills them in and Validate reports every
// problem at once. Sizes are in bytes.
//
// The Pebble tuning defaults follow Pebble's own benchmark settings for small,
// write-heavy values (research/perf-reliability.md §3.3): an eager L0
// compaction trigger and no hard write stall on L0 (rely on compaction pacing
// instead).
//
// Memory. CacheSize is the budget of Pebble's manually allocated memory, not
// just the block cache: every memtable reserves its size from the cache, so
// the blocks get what the memtables leave. Usually two memtables are resident
// (the one being filled and the last one, flushing or kept for reuse), up to
// MemTableStopWritesThreshold while flushes fall behind. In a pure-Go build
// (CGO_ENABLED=0, as the images are built) that memory is Go heap, so the
// garbage collector's headroom comes on top of it. The defaults (32 MiB
// cache, 16 MiB memtables), with the memory limit kshaka-acceptor sets, keep
// an acceptor near 100 MiB RSS while serving the benchmark's 64-client put on
// one million keys (docs/memory.md); 64 MiB of each took it to 200 MiB.
type Options struct {
	// Dir is the data directory. Required.
	Dir string
	// FS performs all file I/O of the store. nil: vfs.Default (the OS). Tests
	// use vfs.NewMem, vfs.NewCrashableMem or vfs/errorfs.
	FS vfs.FS

	// MaxKeySize is the largest accepted key. Default 1 KiB, at most 64 KiB.
	MaxKeySize int
	// MaxValueSize is the largest accepted value data. Default 1 MiB.
	MaxValueSize int
	// MaxBatchItems is the most items (or keys) one request may carry.
	// Default 4096.
	MaxBatchItems int
	// MaxMessageSize is the largest gRPC message the acceptor receives or
	// sends (see ServerOptions). Default 64 MiB; at least MaxValueSize plus
	// MaxKeySize plus 1 KiB of framing.
	MaxMessageSize int

	// MutualTLS makes the acceptor authorize every call by its client
	// certificate (docs/design.md §9.1): a call whose connection has no
	// verified client certificate is refused with UNAUTHENTICATED, one whose
	// certificate's role (pki.RoleOf: O=kshaka:admin or O=kshaka:client) does
	// not allow the method with PERMISSION_DENIED, before the request is
	// read. Set it when the server's TLS configuration verifies client
	// certificates (tls.VerifyClientCertIfGiven with the cluster's CA
	// bundle, as tlsreload.NewServer does with a client CA file). false:
	// every caller may call every method, subject to AdminToken.
	MutualTLS bool
	// AdminToken, when set, must be presented as the metadata
	// `authorization: Bearer <token>` by every call that needs the admin
	// role (SetConfig, Status, ListKeys), in addition to the certificate
	// when MutualTLS is set. The data path and GetConfig never need it.
	AdminToken string

	// HandshakeTimeout bounds how long a new connection may take to finish
	// its TLS handshake (grpc.ConnectionTimeout). Default 10s.
	HandshakeTimeout time.Duration
	// MaxConcurrentStreams bounds the calls in progress on one connection
	// (a proposer keeps at most one per method per acceptor). Default 1024.
	MaxConcurrentStreams uint32

	// Registerer receives the acceptor's Prometheus metrics. nil: none.
	Registerer prometheus.Registerer
	// Logger receives the acceptor's and Pebble's log lines. nil: discard.
	Logger *slog.Logger

	// LockStripes is the number of striped per-key locks. Default 4096.
	LockStripes int

	// CacheSize is Pebble's block cache, from which the memtables reserve
	// their size (see Memory above). Default 32 MiB.
	CacheSize int64
	// MemTableSize is the size of one Pebble memtable. Default 16 MiB.
	MemTableSize uint64
	// MemTableStopWritesThreshold is how many queued memtables stop writes.
	// Default 4.
	MemTableStopWritesThreshold int
	// L0CompactionThreshold is the L0 read amplification that triggers a
	// compaction. Default 2.
	L0CompactionThreshold int
	// L0StopWritesThreshold is the L0 read amplification that stops writes.
	// Default 1000 (effectively never; compaction pacing keeps up).
	L0StopWritesThreshold int
	// LBaseMaxBytes is the target size of Pebble's base level. Default 64 MiB.
	LBaseMaxBytes int64
	// MaxOpenFiles bounds Pebble's open file descriptors. Default 4096.
	MaxOpenFiles int
	// MaxConcurrentCompactions is the most compactions Pebble runs at once.
	// Default min(3, GOMAXPROCS).
	MaxConcurrentCompactions int
	// BytesPerSync makes Pebble sync sstables incrementally every so many
	// bytes, smoothing write-back. Default 512 KiB.
	BytesPerSync int
	// WALDir puts the write-ahead log in its own directory (ideally its own
	// volume, so WAL fsyncs don't wait for compaction writes). "": inside Dir.
	WALDir string
	// WALMinSyncInterval is a minimum gap between WAL fsyncs; more requests
	// then share one fsync (useful on IOPS-billed cloud disks, e.g. 250µs to
	// 500µs). Default 0: sync as soon as asked.
	WALMinSyncInterval time.Duration
	// PromiseFloorStep is how far ahead of a prepare's ballot counter the
	// durable promise floor is raised when a prepare reaches it. Prepares
	// below the durable floor are written without a sync; after a restart the
	// acceptor refuses every ballot up to the floor (see doc.go). A larger
	// step means fewer synced prepares and a larger jump of the proposers'
	// counters after a restart. Default 1<<20. At most MaxBallotLead in
	// microseconds: proposers jump past the floor after a restart, and a
	// jump past the lead would be refused.
	PromiseFloorStep uint64

	// MaxBallotLead bounds ballots (docs/design.md §2.1): a prepare or accept whose
	// ballot counter, or whose accept's next ballot counter, is more than
	// MaxBallotLead ahead of Now in microseconds is refused with
	// ErrInvalidRequest (INVALID_ARGUMENT) and nothing written, so that no
	// single request can push a key's promise, or the promise floor, out of
	// reach of the proposers' clocks. It must exceed the skew between the
	// proposers' clocks and this acceptor's. Default ten minutes.
	MaxBallotLead time.Duration
	// Now is the acceptor's wall clock, for MaxBallotLead. nil: time.Now.
	// Tests inject a fixed clock.
	Now func() time.Time
}

// EnsureDefaults fills in the zero fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	setDefault(&o.MaxKeySize, DefaultMaxKeySize)
	setDefault(&o.MaxValueSize, DefaultMaxValueSize)
	setDefault(&o.MaxBatchItems, DefaultMaxBatchItems)
	setDefault(&o.MaxMessageSize, max(DefaultMaxMessageSize, o.MaxValueSize+o.MaxKeySize+minFraming))
	setDefault(&o.LockStripes, DefaultLockStripes)
	setDefault(&o.CacheSize, DefaultCacheSize)
	setDefault(&o.MemTableSize, DefaultMemTableSize)
	setDefault(&o.MemTableStopWritesThreshold, DefaultMemTableStopWritesThreshold)
	setDefault(&o.L0CompactionThreshold, DefaultL0CompactionThreshold)
	setDefault(&o.L0StopWritesThreshold, DefaultL0StopWritesThreshold)
	setDefault(&o.LBaseMaxBytes, DefaultLBaseMaxBytes)
	setDefault(&o.MaxOpenFiles, DefaultMaxOpenFiles)
	setDefault(&o.MaxConcurrentCompactions, min(3, runtime.GOMAXPROCS(0)))
	setDefault(&o.BytesPerSync, DefaultBytesPerSync)
	setDefault(&o.PromiseFloorStep, DefaultPromiseFloorStep)
	setDefault(&o.MaxBallotLead, DefaultMaxBallotLead)
	setDefault(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&o.MaxConcurrentStreams, DefaultMaxConcurrentStreams)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// minFraming is the room a message needs beyond one key and one value.
const minFraming = 1 << 10

func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// ErrOptions is wrapped by every error Validate returns.
var ErrOptions = errors.New("invalid acceptor options")

// Validate reports every problem of o at once, each wrapped with ErrOptions.
// Call it after EnsureDefaults (Open does both).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...)))
	}
	if o.Dir == "" {
		bad("Dir (the data directory) is required")
	}
	if o.MaxKeySize < 1 || o.MaxKeySize > maxKeySizeLimit {
		bad("MaxKeySize %d is outside 1..%d", o.MaxKeySize, maxKeySizeLimit)
	}
	if o.MaxValueSize < 0 {
		bad("MaxValueSize %d is negative", o.MaxValueSize)
	}
	if o.MaxBatchItems < 1 {
		bad("MaxBatchItems %d must be at least 1", o.MaxBatchItems)
	}
	if need := o.MaxValueSize + o.MaxKeySize + minFraming; o.MaxMessageSize < need {
		bad("MaxMessageSize %d cannot carry one item: need at least %d (MaxValueSize + MaxKeySize + 1 KiB)", o.MaxMessageSize, need)
	}
	if o.LockStripes < 1 || o.LockStripes > 1<<20 {
		bad("LockStripes %d is outside 1..%d", o.LockStripes, 1<<20)
	}
	positive := []struct {
		name string
		v    int64
	}{
		{"CacheSize", o.CacheSize},
		{"MemTableStopWritesThreshold", int64(o.MemTableStopWritesThreshold)},
		{"L0CompactionThreshold", int64(o.L0CompactionThreshold)},
		{"L0StopWritesThreshold", int64(o.L0StopWritesThreshold)},
		{"LBaseMaxBytes", o.LBaseMaxBytes},
		{"MaxOpenFiles", int64(o.MaxOpenFiles)},
		{"MaxConcurrentCompactions", int64(o.MaxConcurrentCompactions)},
		{"BytesPerSync", int64(o.BytesPerSync)},
	}
	for _, p := range positive {
		if p.v < 1 {
			bad("%s %d must be positive", p.name, p.v)
		}
	}
	if o.MemTableSize < 1<<20 || o.MemTableSize >= 4<<30 {
		bad("MemTableSize %d is outside 1 MiB..4 GiB", o.MemTableSize)
	}
	if o.L0StopWritesThreshold < o.L0CompactionThreshold {
		bad("L0StopWritesThreshold %d is below L0CompactionThreshold %d", o.L0StopWritesThreshold, o.L0CompactionThreshold)
	}
	if o.HandshakeTimeout < 0 {
		bad("HandshakeTimeout %v is negative", o.HandshakeTimeout)
	}
	if o.WALMinSyncInterval < 0 {
		bad("WALMinSyncInterval %v is negative", o.WALMinSyncInterval)
	}
	switch lead := o.MaxBallotLead; {
	case lead < time.Microsecond:
		bad("MaxBallotLead %v must be at least 1µs", lead)
	case o.PromiseFloorStep > uint64(lead.Microseconds()):
		bad("PromiseFloorStep %d is more than MaxBallotLead %v (%d µs): proposers jump past the floor after a restart, "+
			"and a jump past the lead would be refused", o.PromiseFloorStep, lead, lead.Microseconds())
	}
	return errors.Join(errs...)
}

// coreOptions returns the acceptor core's options (after EnsureDefaults).
// The acceptor core's negative-control switches are never set here.
func (o *Options) coreOptions() acceptcore.Options {
	return acceptcore.Options{
		MaxKeySize:       o.MaxKeySize,
		MaxValueSize:     o.MaxValueSize,
		MaxBatchItems:    o.MaxBatchItems,
		PromiseFloorStep: o.PromiseFloorStep,
		MaxBallotLead:    o.MaxBallotLead,
	}
}

// Keepalive of the acceptor's connections: a connection is pinged after
// this long without activity and closed when the ping is not answered in
// time, so a client that vanished (or a stream whose reader did) releases
// what it holds.
const (
	keepaliveTime    = time.Minute
	keepaliveTimeout = 20 * time.Second
)

// ServerOptions returns the transport options the acceptor needs from the
// server it is registered on: message size limits that admit the largest
// valid request and refuse a larger one (RESOURCE_EXHAUSTED) from its
// length prefix, before it is read; a bound on the TLS handshake and on the
// calls in progress per connection; keepalive. Acceptor.ServerOptions adds
// the authorization to these.
func (o *Options) ServerOptions() []grpc.ServerOption {
	n := o.MaxMessageSize
	if n == 0 {
		n = max(DefaultMaxMessageSize, o.MaxValueSize+o.MaxKeySize+minFraming)
	}
	handshake, streams := o.HandshakeTimeout, o.MaxConcurrentStreams
	if handshake == 0 {
		handshake = DefaultHandshakeTimeout
	}
	if streams == 0 {
		streams = DefaultMaxConcurrentStreams
	}
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(n), grpc.MaxSendMsgSize(n),
		grpc.ConnectionTimeout(handshake),
		grpc.MaxConcurrentStreams(streams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
	}
}

// pebbleOptions translates o (after EnsureDefaults) into Pebble's options.
func (o *Options) pebbleOptions(logger pebble.Logger, listener *pebble.EventListener) *pebble.Options {
	po := &pebble.Options{
		FS:                          o.FS,
		CacheSize:                   o.CacheSize,
		FormatMajorVersion:          pebble.FormatNewest,
		MemTableSize:                o.MemTableSize,
		MemTableStopWritesThreshold: o.MemTableStopWritesThreshold,
		L0CompactionThreshold:       o.L0CompactionThreshold,
		L0StopWritesThreshold:       o.L0StopWritesThreshold,
		LBaseMaxBytes:               o.LBaseMaxBytes,
		MaxOpenFiles:                o.MaxOpenFiles,
		BytesPerSync:                o.BytesPerSync,
		WALDir:                      o.WALDir,
		Logger:                      logger,
		EventListener:               listener,
	}
	compactions := o.MaxConcurrentCompactions
	po.CompactionConcurrencyRange = func() (int, int) { return 1, compactions }
	if d := o.WALMinSyncInterval; d > 0 {
		po.WALMinSyncInterval = func() time.Duration { return d }
	}
	for i := range po.Levels {
		po.Levels[i].BlockSize = 32 << 10
		po.Levels[i].IndexBlockSize = 256 << 10
	}
	return po
}
