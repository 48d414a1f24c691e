package acceptor

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/kshaka-io/kshaka/internal/acceptcore"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Acceptor is one Kshaka acceptor: the acceptor core (internal/acceptcore:
// the register rules, the request limits and the durability policy) over a
// Pebble store, gated by the installed configuration. Its methods are safe
// for concurrent use.
type Acceptor struct {
	opts    Options
	core    *acceptcore.Core
	log     *slog.Logger
	store   store
	locks   *stripes
	metrics *metrics
	health  *health.Server

	incarnation uint64
	syncs       atomic.Uint64
	keyCount    atomic.Int64
	// tombstones counts the stored keys whose accepted value is a
	// tombstone: counted at Open, kept by write.
	tombstones atomic.Int64
	failure    atomic.Pointer[error]

	// scrape hands the open store to the metrics collector, which reads
	// Pebble's metrics on scrape: db is set once Open succeeded and cleared
	// by Close before the store closes.
	scrape struct {
		sync.RWMutex
		db *pebble.DB
	}

	// floor holds the promise floors the core decides on (see doc.go,
	// "Promises and the floor"). restart is the core's restart floor for
	// this life, from the durable floor read at Open. durable is the floor
	// on disk now. mu serializes the synced commits that raise it.
	floor struct {
		restart uint64
		durable atomic.Uint64
		mu      sync.Mutex
	}

	// admitted and epoch mirror the installed configuration for publish;
	// closed is set (under the gate) by Close.
	admitted atomic.Bool
	epoch    atomic.Uint64
	closed   atomic.Bool
	healthMu sync.Mutex

	// gate orders requests against configuration changes and Close. Data
	// requests and ListKeys pages hold it shared from the epoch check to the
	// reply; SetConfig and Close hold it exclusively. So a new epoch is never
	// acknowledged while a request checked against an older one is still in
	// flight (the fence of docs/design.md §3), and Close waits for in-flight requests.
	gate struct {
		sync.RWMutex
		config membership.Config
	}
}

// Open opens (or creates) the acceptor's store in opts.Dir. On empty storage
// it creates a random incarnation and persists it with Sync. The acceptor
// serves no prepare, accept or read until a configuration that lists its
// incarnation is installed with SetConfig.
func Open(opts Options) (*Acceptor, error) {
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	core, err := acceptcore.New(opts.coreOptions())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrOptions, err)
	}
	a := &Acceptor{
		opts:   opts,
		core:   core,
		log:    opts.Logger,
		locks:  newStripes(opts.LockStripes),
		health: health.NewServer(),
	}
	m, err := newMetrics(opts.Registerer, a.storeStats())
	if err != nil {
		return nil, fmt.Errorf("while registering metrics: %w", err)
	}
	a.metrics = m
	a.store.onSync = func(d time.Duration) {
		a.syncs.Add(1)
		a.metrics.syncs.Inc()
		a.metrics.syncLatency.Observe(d.Seconds())
	}
	if err := a.open(); err != nil {
		a.metrics.unregister()
		return nil, err
	}
	a.metrics.healthy.Set(1)
	a.scrape.Lock()
	a.scrape.db = a.store.db
	a.scrape.Unlock()
	a.publish()
	a.log.Info("acceptor opened", "dir", opts.Dir, "incarnation", fmt.Sprintf("%x", a.incarnation),
		"epoch", a.gate.config.Epoch, "keys", a.keyCount.Load())
	return a, nil
}

func (a *Acceptor) open() (err error) {
	defer recoverFatal(&err)
	listener := &pebble.EventListener{
		BackgroundError: func(err error) { a.fail(fmt.Errorf("pebble background error: %w", err)) },
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			a.fail(fmt.Errorf("pebble detected corruption in %s: %w", info.Path, info.Details))
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			a.log.Warn("slow disk operation", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			a.metrics.writeStalls.Inc()
			a.log.Warn("write stall", "reason", info.Reason)
		},
	}
	wal, separate, err := readWALState(&a.opts)
	if err != nil {
		return err
	}
	if separate {
		if err := wal.checkBeforeOpen(); err != nil {
			return err
		}
	}
	logger := pebbleLogger{log: a.log, fail: a.fail}
	db, err := pebble.Open(a.opts.Dir, a.opts.pebbleOptions(logger, listener))
	if err != nil {
		return fmt.Errorf("while opening the store in %s: %w", a.opts.Dir, err)
	}
	a.store.db = db
	err = a.loadOrCreateMeta()
	if err == nil && separate {
		err = wal.checkAfterOpen(a.opts.FS, a.incarnation)
	}
	if err != nil {
		return errors.Join(err, a.closeDB())
	}
	return nil
}

func (a *Acceptor) loadOrCreateMeta() error {
	inc, cfg, err := a.store.loadMeta()
	if err != nil {
		return err
	}
	n, tombs, corrupt, err := a.store.countRecords()
	if err != nil {
		return err
	}
	if corrupt > 0 {
		a.log.Error("records that cannot be decoded: a request that reads one takes the acceptor out of service",
			"records", corrupt, "dir", a.opts.Dir)
	}
	if inc == 0 {
		if n > 0 {
			return fmt.Errorf("%w: store in %s holds %d keys but no incarnation", register.ErrCorrupt, a.opts.Dir, n)
		}
		if inc, err = newIncarnation(); err != nil {
			return err
		}
		if err := a.store.putMeta(metaIncarnation, encodeIncarnation(inc)); err != nil {
			return fmt.Errorf("while persisting the new incarnation: %w", err)
		}
		a.log.Info("created incarnation on empty storage", "incarnation", fmt.Sprintf("%x", inc))
	}
	floor, err := a.store.loadFloor()
	if err != nil {
		return err
	}
	now := a.opts.Now()
	restart, ahead := a.core.Restart(floor, now)
	if ahead != nil {
		a.log.Warn("the durable promise floor is far ahead of this acceptor's clock: every ballot below it is refused "+
			"until the clocks catch up (the store took a far-future ballot before ballots were bounded)",
			"floor", floor, "clock", register.ClockCounter(now), "maxBallotLead", a.opts.MaxBallotLead)
	}
	a.floor.restart = restart
	a.floor.durable.Store(floor)
	a.incarnation = inc
	a.setConfigLocked(cfg)
	a.keyCount.Store(n)
	a.tombstones.Store(tombs)
	return nil
}

// storeStats are the metrics' sources that are read on scrape.
func (a *Acceptor) storeStats() storeStats {
	st := storeStats{
		keys:       func() float64 { return float64(a.keyCount.Load()) },
		tombstones: func() float64 { return float64(a.tombstones.Load()) },
		withDB: func(fn func(db *pebble.DB)) bool {
			a.scrape.RLock()
			defer a.scrape.RUnlock()
			if a.scrape.db == nil {
				return false
			}
			fn(a.scrape.db)
			return true
		},
		fs:      a.opts.FS,
		volumes: []volume{{name: "data", dir: a.opts.Dir}},
	}
	if a.opts.WALDir != "" && a.opts.WALDir != a.opts.Dir {
		st.volumes = append(st.volumes, volume{name: "wal", dir: a.opts.WALDir})
	}
	return st
}

func newIncarnation() (uint64, error) {
	var buf [8]byte
	for {
		if _, err := rand.Read(buf[:]); err != nil {
			return 0, fmt.Errorf("while creating an incarnation: %w", err)
		}
		if inc := binary.BigEndian.Uint64(buf[:]); inc != 0 {
			return inc, nil
		}
	}
}

// Incarnation returns the identity of this acceptor's storage (docs/design.md §4).
func (a *Acceptor) Incarnation() uint64 { return a.incarnation }

// Config returns the installed configuration (epoch 0 when none).
func (a *Acceptor) Config() membership.Config {
	a.gate.RLock()
	defer a.gate.RUnlock()
	return a.gate.config.Clone()
}

// Err returns the storage error that took the acceptor out of service, or
// nil while it is healthy.
func (a *Acceptor) Err() error {
	if p := a.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// SyncCount returns how many storage batches the acceptor has committed with
// Sync since Open (one per request that changed state, plus metadata writes).
func (a *Acceptor) SyncCount() uint64 { return a.syncs.Load() }

// ServerOptions returns the grpc.ServerOptions the acceptor needs from the
// server passed to Register: Options.ServerOptions (message size limits,
// handshake and stream bounds, keepalive) and the authorization of every
// call (docs/design.md §9.1), as a tap handle that refuses an unauthorized
// call before its request is read and as unary and stream interceptors, and
// after them the standard gRPC server metrics (grpc_server_*; a refused call
// is counted in kshaka_acceptor_refused_calls_total instead). Further
// interceptors may be chained; a server takes only one tap handle.
func (a *Acceptor) ServerOptions() []grpc.ServerOption {
	return append(a.opts.ServerOptions(),
		grpc.InTapHandle(a.tapAuth),
		grpc.ChainUnaryInterceptor(a.unaryAuth, a.metrics.grpc.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(a.streamAuth, a.metrics.grpc.StreamServerInterceptor()),
	)
}

// Close stops serving, waits for the requests in flight and closes the store.
// It is idempotent. Stop the gRPC server (GracefulStop) before Close so that
// requests finish instead of failing with UNAVAILABLE.
func (a *Acceptor) Close() error {
	a.gate.Lock()
	if a.closed.Swap(true) {
		a.gate.Unlock()
		return nil
	}
	a.gate.Unlock()
	a.publish()
	a.health.Shutdown()
	a.metrics.unregister()
	a.scrape.Lock()
	a.scrape.db = nil
	a.scrape.Unlock()
	err := a.closeDB()
	a.log.Info("acceptor closed", "incarnation", fmt.Sprintf("%x", a.incarnation))
	return err
}

func (a *Acceptor) closeDB() (err error) {
	defer recoverFatal(&err)
	if err := a.store.db.Close(); err != nil {
		return fmt.Errorf("while closing the store: %w", err)
	}
	return nil
}

// fail takes the acceptor out of service for good (until restart). It is
// called on every storage error, from any goroutine, with or without the
// gate held; only the first error is kept.
func (a *Acceptor) fail(err error) {
	a.metrics.storageErrors.Inc()
	wrapped := fmt.Errorf("%w: %w", ErrOutOfService, err)
	if !a.failure.CompareAndSwap(nil, &wrapped) {
		return
	}
	a.log.Error("storage error: acceptor out of service", "err", err)
	a.metrics.healthy.Set(0)
	a.publish()
}

// storageErr takes the acceptor out of service after err and returns the
// error to answer with.
func (a *Acceptor) storageErr(err error) error {
	a.fail(err)
	return a.Err()
}

// Health service names set by publish: the server as a whole and the data
// path.
var healthServices = []string{"", "kshaka.v1.Acceptor"}

// publish sets the health status and gauges from admitted, closed and
// failure. It takes no gate (fail runs under it), only healthMu, inside which
// it reads the latest state, so the last publisher always publishes the
// truth.
func (a *Acceptor) publish() {
	a.healthMu.Lock()
	defer a.healthMu.Unlock()
	admitted := a.admitted.Load()
	a.metrics.admitted.Set(boolGauge(admitted))
	a.metrics.epoch.Set(float64(a.epoch.Load()))
	status := healthpb.HealthCheckResponse_NOT_SERVING
	if admitted && a.Err() == nil && !a.closed.Load() {
		status = healthpb.HealthCheckResponse_SERVING
	}
	for _, svc := range healthServices {
		a.health.SetServingStatus(svc, status)
	}
}

// setConfigLocked installs cfg in memory; the caller holds the gate
// exclusively (or has not shared the acceptor yet).
func (a *Acceptor) setConfigLocked(cfg membership.Config) {
	a.gate.config = cfg
	_, member := cfg.Member(a.incarnation)
	a.admitted.Store(member && cfg.Epoch > 0)
	a.epoch.Store(cfg.Epoch)
}

// admit checks a request's epoch against the installed configuration. The
// caller holds the gate shared.
func (a *Acceptor) admit(epoch uint64) error {
	if a.closed.Load() {
		return ErrClosed
	}
	if err := a.Err(); err != nil {
		return err
	}
	cfg := &a.gate.config
	switch err := cfg.Check(a.incarnation, epoch); {
	case errors.Is(err, membership.ErrStaleEpoch):
		return &StaleEpochError{RequestEpoch: epoch, Config: cfg.Clone()}
	case err != nil:
		return fmt.Errorf("%w: incarnation %x is not listed by the installed configuration (epoch %d); "+
			"install one that lists it with Admin.SetConfig", err, a.incarnation, cfg.Epoch)
	}
	return nil
}

// floors are the floors the core decides on: this life's restart floor and
// the installed configuration's GC floors. The caller holds the gate.
func (a *Acceptor) floors() acceptcore.Floors {
	return acceptcore.Floors{Restart: a.floor.restart, Removed: a.gate.config.RemovedBallot, Version: a.gate.config.VersionFloor}
}

// apply runs one data-path request: admission, the stripe locks of all keys,
// the records' states, step (the core's Prepare, Accept or Read, with the
// floors), one batch for the states the core changed, committed as
// the core's durability rule says (commit), and a final health check, all
// before the caller replies.
func (a *Acceptor) apply(epoch uint64, keys [][]byte,
	step func(f acceptcore.Floors, states []register.State) acceptcore.Ready) error {
	a.gate.RLock()
	defer a.gate.RUnlock()
	if err := a.admit(epoch); err != nil {
		return err
	}
	unlock := a.locks.lock(keys)
	defer unlock()

	states := make([]register.State, len(keys))
	found := make([]bool, len(keys))
	var skey []byte
	for i, k := range keys {
		var err error
		skey = storageKey(skey, k)
		if states[i], found[i], err = a.store.get(skey); err != nil {
			return a.storageErr(err)
		}
	}
	ready := step(a.floors(), states)
	if len(ready.Write) > 0 {
		if err := a.write(keys, found, states, ready); err != nil {
			return err
		}
	}
	// A record this request read may have been written by a request whose
	// sync failed after it let go of the stripe; never answer from it.
	return a.Err()
}

// write commits the states ready changed as one batch; old are the states
// the records had (found: they existed).
func (a *Acceptor) write(keys [][]byte, found []bool, old []register.State, ready acceptcore.Ready) error {
	b := a.store.db.NewBatch()
	defer b.Close()
	var (
		skey    []byte
		rec     []byte
		created int64
		tombs   int64
	)
	for _, i := range ready.Write {
		if !found[i] {
			created++
		}
		switch was, is := found[i] && old[i].Value.Tombstone, ready.States[i].Value.Tombstone; {
		case is && !was:
			tombs++
		case was && !is:
			tombs--
		}
		skey = storageKey(skey, keys[i])
		rec = register.AppendState(rec[:0], ready.States[i])
		if err := b.Set(skey, rec, nil); err != nil {
			return a.storageErr(fmt.Errorf("while preparing the batch: %w", err))
		}
	}
	switch err := a.commit(b, ready); {
	case errors.Is(err, ErrInvalidRequest):
		return err // refused before anything was committed
	case err != nil:
		return a.storageErr(err)
	}
	a.keyCount.Add(created)
	a.tombstones.Add(tombs)
	return nil
}

// commit commits b, which holds ready's writes, as the core's Durability
// says against the durable floor. Without a sync (a prepare below the floor)
// the writes may be lost if this process or machine dies before the next
// sync, and the restart floor keeps their promises instead. A floor raise,
// or a refusal, is decided again under floor.mu against the floor on disk
// then: raises are serialized, so the floor on disk only grows, and one that
// a concurrent request made meanwhile may cover this batch. A refusal (a
// raise past 2^64-1) commits nothing and returns ErrInvalidRequest.
func (a *Acceptor) commit(b *pebble.Batch, ready acceptcore.Ready) error {
	d, err := a.core.Durability(ready, a.floor.durable.Load())
	if err == nil && d.Floor == 0 {
		return a.store.commitAs(b, d.Sync)
	}
	a.floor.mu.Lock()
	defer a.floor.mu.Unlock()
	if d, err = a.core.Durability(ready, a.floor.durable.Load()); err != nil {
		return err
	}
	if d.Floor == 0 {
		return a.store.commitAs(b, d.Sync)
	}
	if err := b.Set(metaFloor, binary.BigEndian.AppendUint64(nil, d.Floor), nil); err != nil {
		return fmt.Errorf("while preparing the promise floor: %w", err)
	}
	if err := a.store.commit(b); err != nil {
		return err
	}
	a.floor.durable.Store(d.Floor)
	return nil
}

func (a *Acceptor) prepare(epoch uint64, items []acceptcore.PrepareItem) ([]acceptcore.PrepareOutcome, error) {
	if err := a.core.CheckPrepare(items, a.opts.Now()); err != nil {
		return nil, err
	}
	keys := make([][]byte, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	var out []acceptcore.PrepareOutcome
	err := a.apply(epoch, keys, func(f acceptcore.Floors, states []register.State) (ready acceptcore.Ready) {
		out, ready = a.core.Prepare(f, items, states)
		return ready
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (a *Acceptor) accept(epoch uint64, items []acceptcore.AcceptItem) ([]acceptcore.AcceptOutcome, error) {
	if err := a.core.CheckAccept(items, a.opts.Now()); err != nil {
		return nil, err
	}
	keys := make([][]byte, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	var out []acceptcore.AcceptOutcome
	err := a.apply(epoch, keys, func(f acceptcore.Floors, states []register.State) (ready acceptcore.Ready) {
		out, ready = a.core.Accept(f, items, states)
		return ready
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (a *Acceptor) read(epoch uint64, keys [][]byte) ([]acceptcore.ReadOutcome, error) {
	if err := a.core.CheckRead(keys); err != nil {
		return nil, err
	}
	var out []acceptcore.ReadOutcome
	err := a.apply(epoch, keys, func(_ acceptcore.Floors, states []register.State) acceptcore.Ready {
		out = a.core.Read(states)
		return acceptcore.Ready{}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetConfig installs cfg (docs/design.md §3): cfg must be valid; a higher epoch is
// persisted with Sync before SetConfig returns; the installed configuration
// again is a no-op; a lower epoch, the installed epoch with a different
// configuration, or GC floors below the installed ones (docs/design.md §10,
// membership.CheckFloors) fail with ErrConfigConflict. It returns the configuration
// installed afterwards.
func (a *Acceptor) SetConfig(cfg membership.Config) (membership.Config, error) {
	if err := cfg.Validate(); err != nil {
		return membership.Config{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	a.gate.Lock()
	defer a.gate.Unlock()
	if a.closed.Load() {
		return membership.Config{}, ErrClosed
	}
	if err := a.Err(); err != nil {
		return membership.Config{}, err
	}
	cur := a.gate.config
	switch {
	case cfg.Epoch == cur.Epoch && configsEqual(cfg, cur):
		return cur.Clone(), nil
	case cfg.Epoch == cur.Epoch:
		return membership.Config{}, fmt.Errorf("%w: epoch %d is installed with different contents (installed %v, got %v)",
			ErrConfigConflict, cur.Epoch, cur, cfg)
	case cfg.Epoch < cur.Epoch:
		return membership.Config{}, fmt.Errorf("%w: epoch %d is lower than the installed epoch %d",
			ErrConfigConflict, cfg.Epoch, cur.Epoch)
	}
	if err := membership.CheckFloors(cur, cfg); err != nil {
		return membership.Config{}, fmt.Errorf("%w: %w", ErrConfigConflict, err)
	}
	rec, err := encodeConfig(cfg)
	if err != nil {
		return membership.Config{}, err
	}
	if err := a.store.putMeta(metaConfig, rec); err != nil {
		return membership.Config{}, a.storageErr(fmt.Errorf("while persisting the configuration: %w", err))
	}
	a.setConfigLocked(cfg.Clone())
	a.log.Info("configuration installed", "epoch", cfg.Epoch, "config", cfg.String(), "admitted", a.admitted.Load())
	a.publish()
	return cfg.Clone(), nil
}

func configsEqual(a, b membership.Config) bool { return a.Equal(b) }

// Status is a snapshot of the acceptor's identity and health.
type Status struct {
	Incarnation uint64
	// Config is the installed configuration; its epoch is the highest the
	// acceptor has acknowledged (it only grows: see the package doc).
	Config membership.Config
	// Admitted: Config lists Incarnation.
	Admitted bool
	// Healthy is false after a storage error or Close.
	Healthy bool
	// KeyCount is the number of stored keys.
	KeyCount uint64
	// Reason explains, in words, why the acceptor is not serving ("" when it is).
	Reason string
}

// Status returns the acceptor's current status.
func (a *Acceptor) Status() Status {
	a.gate.RLock()
	cfg, closed := a.gate.config.Clone(), a.closed.Load()
	a.gate.RUnlock()
	_, admitted := cfg.Member(a.incarnation)
	s := Status{
		Incarnation: a.incarnation,
		Config:      cfg,
		Admitted:    admitted && cfg.Epoch > 0,
		Healthy:     a.Err() == nil && !closed,
		KeyCount:    uint64(max(a.keyCount.Load(), 0)),
	}
	switch err := a.Err(); {
	case err != nil:
		s.Reason = err.Error()
	case closed:
		s.Reason = ErrClosed.Error()
	case cfg.Epoch == 0:
		s.Reason = fmt.Sprintf("not admitted: no configuration installed; install one that lists incarnation %x", a.incarnation)
	case !s.Admitted:
		s.Reason = fmt.Sprintf("not admitted: the configuration of epoch %d does not list incarnation %x", cfg.Epoch, a.incarnation)
	}
	return s
}

// KeyFilter selects the keys listKeys lists; the zero KeyFilter lists all.
type KeyFilter struct {
	// TombstonesOnly lists only the keys whose accepted value is a
	// tombstone (the candidates of tombstone GC, docs/design.md §10).
	TombstonesOnly bool
	// AcceptedBefore, when not 0, lists only the keys whose accepted
	// ballot's counter is below it.
	AcceptedBefore uint64
}

func (f KeyFilter) none() bool { return f == KeyFilter{} }

func (f KeyFilter) keep(st register.State) bool {
	if f.TombstonesOnly && !st.Value.Tombstone {
		return false
	}
	return f.AcceptedBefore == 0 || st.Accepted.Counter < f.AcceptedBefore
}

// scanFactor bounds how many records one filtered page looks at: pageSize
// times it, so a page holds the gate for a bounded time even when few keys
// match.
const scanFactor = 16

// listKeys calls page with the stored keys greater than after that f
// selects, in ascending order, pageSize at a time, at most limit in all (0:
// no limit), and the last key looked at. Each page is read under the gate
// and handed to page after the gate is released, so a slow reader holds up
// neither configuration changes nor Close. A filtered page looks at no more
// than pageSize×scanFactor records and may hold few keys, or none.
func (a *Acceptor) listKeys(after []byte, limit uint64, pageSize int, f KeyFilter, page func(keys [][]byte, through []byte) error) error {
	var sent uint64
	for {
		n := pageSize
		if limit > 0 {
			n = int(min(uint64(n), limit-sent))
		}
		if n == 0 {
			return nil
		}
		keys, through, done, err := a.readPage(after, n, f)
		if err != nil {
			return err
		}
		if len(keys) == 0 && done {
			return nil
		}
		if err := page(keys, through); err != nil {
			return err
		}
		sent += uint64(len(keys))
		if done {
			return nil
		}
		after = through
	}
}

// readPage reads up to n keys after after that f selects; through is the
// last key it looked at, done that the store has none after it.
func (a *Acceptor) readPage(after []byte, n int, f KeyFilter) (keys [][]byte, through []byte, done bool, err error) {
	a.gate.RLock()
	defer a.gate.RUnlock()
	if a.closed.Load() {
		return nil, nil, false, ErrClosed
	}
	if err := a.Err(); err != nil {
		return nil, nil, false, err
	}
	keys = make([][]byte, 0, n)
	budget := n * scanFactor
	done = true
	var bad error
	err = a.store.scanRecords(after, !f.none(), func(k, rec []byte) bool {
		if len(keys) == n || budget == 0 {
			done = false
			return false
		}
		budget--
		through = append(through[:0], k...)
		if !f.none() {
			st, derr := register.DecodeStateHeader(rec)
			if derr != nil {
				bad = fmt.Errorf("while decoding key %s: %w", quoteKey(k), derr)
				return false
			}
			if !f.keep(st) {
				return true
			}
		}
		keys = append(keys, slices.Clone(k))
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return nil, nil, false, a.storageErr(err)
	}
	return keys, through, done, nil
}

// addressedTo checks that a request meant for incarnation inc (0: any) has
// reached this acceptor, and not another one now at the same address.
func (a *Acceptor) addressedTo(inc uint64) error {
	if inc != 0 && inc != a.incarnation {
		return fmt.Errorf("%w: the request is meant for incarnation %016x, this acceptor is incarnation %016x "+
			"(its address now belongs to another acceptor)", membership.ErrNotAdmitted, inc, a.incarnation)
	}
	return nil
}

// collect removes the records of collected tombstones (Admin Collect,
// docs/design.md §10): under the gate (so the configuration whose floors the
// core checks cannot change meanwhile) and the keys' stripe locks, the core
// decides from the stored records, and the records it removes are deleted
// in one synced batch before the reply. Only admitted acceptors collect.
func (a *Acceptor) collect(items []acceptcore.CollectItem) ([]acceptcore.CollectVerdict, error) {
	if err := a.core.CheckCollect(items, a.opts.Now()); err != nil {
		return nil, err
	}
	a.gate.RLock()
	defer a.gate.RUnlock()
	if err := a.admit(a.gate.config.Epoch); err != nil {
		return nil, err
	}
	keys := make([][]byte, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	unlock := a.locks.lock(keys)
	defer unlock()
	states := make([]register.State, len(keys))
	var skey []byte
	for i, k := range keys {
		var err error
		skey = storageKey(skey, k)
		if states[i], _, err = a.store.get(skey); err != nil {
			return nil, a.storageErr(err)
		}
	}
	out := a.core.Collect(a.floors(), items, states)
	b := a.store.db.NewBatch()
	defer b.Close()
	for i, v := range out {
		if v != acceptcore.CollectRemoved {
			continue
		}
		skey = storageKey(skey, keys[i])
		if err := b.Delete(skey, nil); err != nil {
			return nil, a.storageErr(fmt.Errorf("while preparing the batch: %w", err))
		}
	}
	if n := int64(b.Count()); n > 0 {
		if err := a.store.commit(b); err != nil {
			return nil, a.storageErr(err)
		}
		a.keyCount.Add(-n)
		a.tombstones.Add(-n)
		a.metrics.collected.Add(float64(n))
	}
	return out, a.Err()
}
