package proposer

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Value is a key's data and version. Version counts the changes applied to
// the key: every successful Put, CompareAndSwap, Change or Delete adds one,
// and versions are never reused, even across a delete.
type Value struct {
	Data    []byte
	Version uint64
}

// Resolution is what Client.Resolve found out about an unknown outcome.
// It is the key machine's type, so the engine passes it through unchanged.
type Resolution = keyproc.Resolution

const (
	// Undecided: other writers changed the key in a way that hides whether
	// the change took effect. It will not take effect later.
	Undecided = keyproc.Undecided
	// Applied: the change took effect, exactly once.
	Applied = keyproc.Applied
	// NotApplied: the change did not take effect and never will.
	NotApplied = keyproc.NotApplied
)

// Client is a CASPaxos proposer. It is safe for concurrent use; one client
// per process is the intended use (its caches and batches are shared).
type Client struct {
	cfg      Config
	kcfg     keyproc.Config    // the policy of every key's machine
	env      keyproc.Env       // what the machines share: env{c}
	start    time.Time         // the origin of the machines' clock (now)
	dialOpts []grpc.DialOption // all but the transport credentials
	sec      *security
	ctx      context.Context // ended by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup // every goroutine and public call in progress
	// roundTime is a moving average of successful rounds, in nanoseconds.
	roundTime atomic.Int64
	// lastDiscovery is when rediscover last asked the Endpoints (unix ns).
	lastDiscovery atomic.Int64
	// epoch is conf.cfg.Epoch, for the key drivers' check on every step.
	epoch atomic.Uint64

	life struct {
		sync.Mutex
		closed bool
	}
	clock struct {
		sync.Mutex
		c *round.Clock
	}
	cache struct {
		sync.Mutex
		c *round.Cache
	}
	conf struct {
		sync.RWMutex
		cfg membership.Config
	}
	net struct {
		sync.Mutex
		conns    map[string]*grpc.ClientConn
		batchers map[batcherKey]*batcher
	}
	keys struct {
		sync.Mutex
		m map[string]*keyQueue
	}
}

// New creates a client: it reads the configuration from the first endpoint
// that answers (Admin.GetConfig), then talks to its members directly.
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	id, err := proposerID(cfg.ID)
	if err != nil {
		return nil, err
	}
	sec, err := newSecurity(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, dialOpts: dialOptions(cfg), sec: sec, start: time.Now()}
	c.env = env{c}
	c.kcfg = keyproc.Config{
		MaxRetries:      cfg.MaxRetries,
		MaxConflicts:    maxConflicts,
		RequestTimeout:  cfg.RequestTimeout,
		BackoffBase:     backoffBase,
		BackoffMax:      backoffMax,
		RediscoverAfter: rediscoverAfter,
		OneRTT:          cfg.CacheSize > 0,
	}
	mc, err := discover(ctx, cfg, sec, c.dialOpts)
	if err != nil {
		sec.close()
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	// The ID is new for every client, so its ballots are too, whatever an
	// earlier client with the same Config.ID issued (docs/design.md §2.1).
	c.clock.c = round.NewWallClock(id, time.Now, cfg.MaxBallotLead)
	c.cache.c = round.NewCache(max(cfg.CacheSize, 0))
	c.conf.cfg = mc
	c.epoch.Store(mc.Epoch)
	c.net.conns = map[string]*grpc.ClientConn{}
	c.net.batchers = map[batcherKey]*batcher{}
	c.keys.m = map[string]*keyQueue{}
	return c, nil
}

// configuredIDBits is how many of a configured Config.ID's low bits go into
// the top of the proposer ID; the rest of the ID is random.
const configuredIDBits = 16

// proposerID picks the proposer ID of a new client (docs/design.md §2.1): 64 random
// bits, or, with a configured ID, the configured ID's low 16 bits in the
// top 16 bits (so ballots show which configured client issued them) over 48
// random bits. It is never 0. A configured ID is never used alone: a client
// restarted with the same configuration could otherwise reissue a ballot of
// its previous life, whose counter Observe may have moved ahead of the wall
// clock.
func proposerID(configured uint64) (uint64, error) {
	const randomBits = 64 - configuredIDBits
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, fmt.Errorf("while picking a proposer ID: %w", err)
		}
		id := binary.LittleEndian.Uint64(b[:])
		if configured != 0 {
			id = configured<<randomBits | id&(1<<randomBits-1)
		}
		if id != 0 {
			return id, nil
		}
	}
}

// Config returns the configuration the client uses now.
func (c *Client) Config() membership.Config { return c.config().Clone() }

// Close ends every operation in progress (an operation whose change may
// have been sent returns an *UnknownOutcomeError, others ErrClosed), waits
// for the client's goroutines and closes the connections. Later calls
// return ErrClosed.
func (c *Client) Close() error {
	c.life.Lock()
	if c.life.closed {
		c.life.Unlock()
		return nil
	}
	c.life.closed = true
	c.life.Unlock()
	c.cancel()
	c.wg.Wait()
	c.sec.close()
	c.net.Lock()
	defer c.net.Unlock()
	var errs []error
	for _, conn := range c.net.conns {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}

// enter registers a public call; it fails once the client is closed.
func (c *Client) enter() error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.life.closed {
		return ErrClosed
	}
	c.wg.Add(1)
	return nil
}

// Get returns the key's value, or ErrNotFound. It is linearizable: a quorum
// read that falls back to an identity change (a write) when the acceptors
// do not agree (docs/design.md §2.5).
func (c *Client) Get(ctx context.Context, key []byte) (Value, error) {
	if err := checkKey(key); err != nil {
		return Value{}, err
	}
	if err := c.enter(); err != nil {
		return Value{}, err
	}
	defer c.wg.Done()
	key = clone(key)
	rd := keyproc.NewQuorumRead(c.kcfg, c.config())
	for {
		if err := c.read(ctx, rd, key); err != nil {
			return Value{}, err
		}
		if rd.State() == keyproc.ReadDone {
			return found(rd.Value())
		}
		if !rd.Retry(c.config()) {
			break
		}
	}
	r := c.do(ctx, key, &op{Op: keyproc.Op{Change: round.Identity, Identity: true}})
	if r.err != nil {
		return Value{}, r.err
	}
	return found(r.value)
}

// read runs the try of rd in flight.
func (c *Client) read(ctx context.Context, rd *keyproc.QuorumRead, key []byte) error {
	start := time.Now()
	s := rd.Send()
	ph := newPhase(len(s.To))
	for _, t := range s.To {
		c.batcher(t.Addr, methodRead).add(&item{epoch: s.Epoch, key: key, inc: t.Incarnation, ph: ph})
	}
	attempt := rd.Attempt()
	c.await(ctx, ph, len(s.To), func(mr memberReply) bool {
		rd.OnRead(keyproc.ReplyRead{Attempt: attempt, Incarnation: mr.inc, OK: mr.reply == round.Ack, Accepted: mr.accepted, Value: mr.value})
		return rd.State() != keyproc.Reading
	}, rd.Expire)
	if f := c.cfg.Events.RoundDone; f != nil {
		f(RoundInfo{Key: key, Read: true, Outcome: rd.Outcome().String(), Duration: time.Since(start)})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

// Put sets the key's data and returns the new value.
func (c *Client) Put(ctx context.Context, key, data []byte) (Value, error) {
	if err := checkValue(data); err != nil {
		return Value{}, err
	}
	data = clone(data)
	return c.run(ctx, key, func(cur register.Value) (register.Value, error) {
		return cur.Put(data), nil
	})
}

// CompareAndSwap sets the key's data if its version is version, where 0
// means "only if the key does not exist" (never written, or deleted). On a
// mismatch it returns a *VersionMismatchError with the current value; that
// answer is authoritative.
func (c *Client) CompareAndSwap(ctx context.Context, key []byte, version uint64, data []byte) (Value, error) {
	if err := checkValue(data); err != nil {
		return Value{}, err
	}
	data = clone(data)
	k := clone(key)
	return c.run(ctx, key, func(cur register.Value) (register.Value, error) {
		uv := userValue(cur)
		if uv.Version != version {
			return cur, &VersionMismatchError{Key: k, Expected: version, Current: cloneValue(uv), Exists: cur.Exists()}
		}
		return cur.Put(data), nil
	})
}

// Delete removes the key. The key keeps a tombstone, so versions are never
// reused; deleting a key that does not exist changes nothing.
func (c *Client) Delete(ctx context.Context, key []byte) error {
	_, err := c.run(ctx, key, func(cur register.Value) (register.Value, error) {
		if !cur.Exists() {
			return cur, nil
		}
		return cur.Delete(), nil
	})
	return err
}

// Change sets the key's data to fn's result, computed from the current
// value (Version 0 and exists false when the key does not exist). When fn
// returns an error nothing changes, and that error is returned once the
// unchanged value has been confirmed by a quorum.
//
// fn may be called several times (retries, combining) and from another
// goroutine; it must not modify cur.Data, keep it, or call the client for
// the same key. A panic in fn is raised again in the caller's goroutine.
func (c *Client) Change(ctx context.Context, key []byte, fn func(cur Value, exists bool) ([]byte, error)) (Value, error) {
	return c.run(ctx, key, func(cur register.Value) (nv register.Value, err error) {
		defer func() {
			if p := recover(); p != nil {
				nv, err = cur, &panicError{p}
			}
		}()
		data, err := fn(cloneValue(userValue(cur)), cur.Exists())
		if err != nil {
			return cur, err
		}
		if err := checkValue(data); err != nil {
			return cur, err
		}
		return cur.Put(clone(data)), nil
	})
}

// run applies one change to a key and returns the value right after it.
func (c *Client) run(ctx context.Context, key []byte, ch round.Change) (Value, error) {
	if err := checkKey(key); err != nil {
		return Value{}, err
	}
	if err := c.enter(); err != nil {
		return Value{}, err
	}
	defer c.wg.Done()
	r := c.do(ctx, clone(key), &op{Op: keyproc.Op{Change: ch}})
	if r.err != nil {
		var p *panicError
		if errors.As(r.err, &p) {
			panic(p.v)
		}
		return Value{}, r.err
	}
	return cloneValue(userValue(r.value)), nil
}

// do submits o and waits for its answer.
func (c *Client) do(ctx context.Context, key []byte, o *op) opResult {
	if err := ctx.Err(); err != nil {
		return opResult{err: err}
	}
	o.res = make(chan opResult, 1)
	c.submit(key, o)
	return c.wait(ctx, o)
}

// touchConcurrency bounds the keys one Touch or Rescan call has in flight.
const touchConcurrency = 1024

// Touch runs an identity change with a fresh ballot (a full prepare, never
// the 1RTT cache) on every key: the rescan of a membership change (docs/design.md
// §5). An attempt whose prepare replies show a ballot above its own does not
// propose; it goes again with a ballot above the one shown
// (round.Write.Outranked), so a successful touch ends above every ballot it
// saw. Keys are processed concurrently and batched; the errors of the keys
// that failed are joined.
func (c *Client) Touch(ctx context.Context, keys ...[]byte) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	if err := c.enter(); err != nil {
		return err
	}
	defer c.wg.Done()
	return c.eachKey(ctx, keys, c.touch)
}

// touch runs the identity change of Touch on one key.
func (c *Client) touch(ctx context.Context, key []byte) error {
	r := c.do(ctx, clone(key), &op{Op: keyproc.TouchOp()})
	if r.err != nil {
		return fmt.Errorf("while touching key %q: %w", key, r.err)
	}
	return nil
}

// eachKey runs fn on every key, touchConcurrency at a time, and joins the
// errors. Once ctx ends, the keys not started fail with its error.
func (c *Client) eachKey(ctx context.Context, keys [][]byte, fn func(context.Context, []byte) error) error {
	errs := make([]error, len(keys))
	sem := make(chan struct{}, touchConcurrency)
	var wg sync.WaitGroup
	for i, k := range keys {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = fn(ctx, k)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RescanStats is what Rescan did with its keys.
type RescanStats struct {
	// Touched counts the keys whose identity change succeeded.
	Touched int
}

// Rescan is the rescan of a membership change (docs/design.md §5) under the
// client's configuration, which must be the joint configuration of the
// change and fenced: Touch's identity change, with a fresh ballot forced
// above every ballot its prepare shows, on every key. The errors of the keys
// that could not be touched are joined; the stats count the keys touched
// successfully.
//
// No key is skipped, not even one whose accepted ballot already agrees on
// an accept quorum of S: a higher ballot promised on some members and
// accepted on one (an unknown outcome) survives beside such a key, and two
// changes later it can win over an acknowledged write (docs/design.md,
// "The rescan touches every key"; the simulation's SurvivingBallot).
func (c *Client) Rescan(ctx context.Context, keys ...[]byte) (RescanStats, error) {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return RescanStats{}, err
		}
	}
	if err := c.enter(); err != nil {
		return RescanStats{}, err
	}
	defer c.wg.Done()
	var touched atomic.Int64
	err := c.eachKey(ctx, keys, func(ctx context.Context, k []byte) error {
		err := c.touch(ctx, k)
		if err == nil {
			touched.Add(1)
		}
		return err
	})
	return RescanStats{Touched: int(touched.Load())}, err
}

// Resolve settles an unknown outcome (err must be or wrap an
// *UnknownOutcomeError). It runs an identity change with a fresh ballot;
// once that succeeds, the change that ended unknown can no longer take
// effect later, and Resolve reports whether it did (Applied, NotApplied) or
// that other writers hid it (Undecided). The value returned is the key's
// value confirmed by that round (Version 0 when it does not exist).
func (c *Client) Resolve(ctx context.Context, err error) (Resolution, Value, error) {
	var u *UnknownOutcomeError
	if !errors.As(err, &u) {
		return Undecided, Value{}, invalidf("Resolve needs an *UnknownOutcomeError, got %v", err)
	}
	if err := checkKey(u.Key); err != nil {
		return Undecided, Value{}, err
	}
	if err := c.enter(); err != nil {
		return Undecided, Value{}, err
	}
	defer c.wg.Done()
	if len(u.pending) == 0 {
		// Nothing this client sent can land: the change did not happen.
		r := c.do(ctx, clone(u.Key), &op{Op: keyproc.Op{Change: round.Identity, Identity: true, Fresh: true}})
		if r.err != nil {
			return Undecided, Value{}, r.err
		}
		return NotApplied, cloneValue(userValue(r.value)), nil
	}
	r := c.do(ctx, clone(u.Key), &op{Op: keyproc.Op{Resolve: u.pending, Identity: true}})
	if r.err != nil {
		return Undecided, Value{}, r.err
	}
	return r.resolution, cloneValue(userValue(r.value)), nil
}

// userValue is what callers see of a register: nothing when it does not
// exist.
func userValue(v register.Value) Value {
	if !v.Exists() {
		return Value{}
	}
	return Value{Data: v.Data, Version: v.Version}
}

func found(v register.Value) (Value, error) {
	if !v.Exists() {
		return Value{}, ErrNotFound
	}
	return cloneValue(userValue(v)), nil
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

func cloneValue(v Value) Value {
	v.Data = clone(v.Data)
	return v
}
