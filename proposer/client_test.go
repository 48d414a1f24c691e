package proposer_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/kshaka-io/kshaka/acceptor"
	"github.com/kshaka-io/kshaka/acceptor/acceptortest"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"
)

// counters counts what a client sends, through Config.Events.
type counters struct {
	prepareItems, acceptItems, readItems atomic.Int64
	rounds, fastRounds, readRounds       atomic.Int64
	configs                              atomic.Int64
	// rpcDone gets a token after every RPC (see waitAccepts).
	rpcDone chan struct{}
}

func (n *counters) events() proposer.Events {
	n.rpcDone = make(chan struct{}, 1)
	return proposer.Events{
		RPCDone: func(i proposer.RPCInfo) {
			defer func() {
				select {
				case n.rpcDone <- struct{}{}:
				default:
				}
			}()
			switch i.Method {
			case "prepare":
				n.prepareItems.Add(int64(i.Items))
			case "accept":
				n.acceptItems.Add(int64(i.Items))
			case "read":
				n.readItems.Add(int64(i.Items))
			}
		},
		RoundDone: func(i proposer.RoundInfo) {
			switch {
			case i.Read:
				n.readRounds.Add(1)
			case i.FastPath:
				n.fastRounds.Add(1)
				n.rounds.Add(1)
			default:
				n.rounds.Add(1)
			}
		},
		ConfigChanged: func(membership.Config) { n.configs.Add(1) },
	}
}

// waitAccepts waits until the client has had answers (or errors) for want
// accept items, or fails tb after timeout.
func (n *counters) waitAccepts(tb testing.TB, want int64, timeout time.Duration) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for n.acceptItems.Load() < want {
		select {
		case <-n.rpcDone:
		case <-deadline.C:
			tb.Fatalf("%d of %d accept items answered after %v", n.acceptItems.Load(), want, timeout)
		}
	}
}

func newClient(t testing.TB, endpoints []string, mod func(*proposer.Config)) *proposer.Client {
	t.Helper()
	cfg := proposer.Config{Endpoints: endpoints}
	if mod != nil {
		mod(&cfg)
	}
	c, err := proposer.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t testing.TB, c *proposer.Client, key, data string) proposer.Value {
	t.Helper()
	v, err := c.Put(ctxT(t), []byte(key), []byte(data))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return v
}

func mustGet(t testing.TB, c *proposer.Client, key string) proposer.Value {
	t.Helper()
	v, err := c.Get(ctxT(t), []byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func TestBasicOperations(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs()[1:2], nil)
	ctx := ctxT(t)

	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, proposer.ErrNotFound) {
		t.Fatalf("Get of a new key: %v, want ErrNotFound", err)
	}
	if v := mustPut(t, c, "k", "a"); v.Version != 1 || string(v.Data) != "a" {
		t.Fatalf("Put = %+v", v)
	}
	if v := mustPut(t, c, "k", "b"); v.Version != 2 {
		t.Fatalf("second Put = %+v", v)
	}
	if v := mustGet(t, c, "k"); v.Version != 2 || string(v.Data) != "b" {
		t.Fatalf("Get = %+v", v)
	}

	// CAS: mismatch reports the current value; a match advances the version.
	_, err := c.CompareAndSwap(ctx, []byte("k"), 1, []byte("c"))
	var vm *proposer.VersionMismatchError
	if !errors.As(err, &vm) || !errors.Is(err, proposer.ErrVersionMismatch) ||
		vm.Current.Version != 2 || string(vm.Current.Data) != "b" || !vm.Exists || vm.Expected != 1 {
		t.Fatalf("stale CAS: %v (%+v)", err, vm)
	}
	if v, err := c.CompareAndSwap(ctx, []byte("k"), 2, []byte("c")); err != nil || v.Version != 3 {
		t.Fatalf("CAS = %+v, %v", v, err)
	}
	if _, err := c.CompareAndSwap(ctx, []byte("k"), 0, []byte("x")); !errors.Is(err, proposer.ErrVersionMismatch) {
		t.Fatalf("CAS 0 on an existing key: %v", err)
	}
	if v, err := c.CompareAndSwap(ctx, []byte("new"), 0, []byte("x")); err != nil || v.Version != 1 {
		t.Fatalf("CAS 0 on a new key = %+v, %v", v, err)
	}

	// Delete leaves a tombstone: not found, CAS 0 creates it again with a
	// version never used before.
	if err := c.Delete(ctx, []byte("k")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, proposer.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	_, err = c.CompareAndSwap(ctx, []byte("k"), 3, []byte("y"))
	if !errors.As(err, &vm) || vm.Exists || vm.Current.Version != 0 {
		t.Fatalf("CAS on a deleted key: %v (%+v)", err, vm)
	}
	if v, err := c.CompareAndSwap(ctx, []byte("k"), 0, []byte("y")); err != nil || v.Version != 5 {
		t.Fatalf("CAS 0 after Delete = %+v, %v (want version 5)", v, err)
	}
	if err := c.Delete(ctx, []byte("never")); err != nil {
		t.Fatalf("Delete of a missing key: %v", err)
	}

	// Change: fn sees the current value; its error changes nothing.
	v, err := c.Change(ctx, []byte("k"), func(cur proposer.Value, exists bool) ([]byte, error) {
		if !exists || string(cur.Data) != "y" {
			return nil, fmt.Errorf("unexpected %+v %v", cur, exists)
		}
		return append(cur.Data, '!'), nil
	})
	if err != nil || string(v.Data) != "y!" || v.Version != 6 {
		t.Fatalf("Change = %+v, %v", v, err)
	}
	errNo := errors.New("no")
	if _, err := c.Change(ctx, []byte("k"), func(proposer.Value, bool) ([]byte, error) { return nil, errNo }); err != errNo {
		t.Fatalf("Change with an error: %v", err)
	}
	if v := mustGet(t, c, "k"); v.Version != 6 || string(v.Data) != "y!" {
		t.Fatalf("after a failed Change: %+v", v)
	}

	// Returned data is the caller's to modify.
	v = mustGet(t, c, "k")
	v.Data[0] = 'Z'
	if v := mustGet(t, c, "k"); string(v.Data) != "y!" {
		t.Fatalf("Get after modifying a returned value: %q", v.Data)
	}

	// Another client sees all of it.
	c2 := newClient(t, cl.Addrs()[2:], nil)
	if v := mustGet(t, c2, "k"); v.Version != 6 || string(v.Data) != "y!" {
		t.Fatalf("second client Get = %+v", v)
	}
}

// TestFailedCASRunsAccept: a mismatch is reported only after the unchanged
// value was accepted by a quorum (docs/design.md §2.3).
func TestFailedCASRunsAccept(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	var n counters
	c := newClient(t, cl.Addrs(), func(c *proposer.Config) { c.Events = n.events() })
	mustPut(t, c, "k", "v")
	before := n.acceptItems.Load()
	if _, err := c.CompareAndSwap(ctxT(t), []byte("k"), 7, []byte("x")); !errors.Is(err, proposer.ErrVersionMismatch) {
		t.Fatalf("CAS: %v", err)
	}
	if got := n.acceptItems.Load() - before; got < 2 {
		t.Errorf("failed CAS sent %d accepts, want an accept quorum", got)
	}
	if v := mustGet(t, c, "k"); v.Version != 1 || string(v.Data) != "v" {
		t.Errorf("after a failed CAS: %+v", v)
	}
}

func TestChangePanicReachesCaller(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	defer func() {
		if p := recover(); p != "boom" {
			t.Fatalf("recovered %v, want boom", p)
		}
		// The client still works.
		mustPut(t, c, "p", "ok")
	}()
	_, _ = c.Change(ctxT(t), []byte("p"), func(proposer.Value, bool) ([]byte, error) { panic("boom") })
}

func TestBadInput(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	var n counters
	c := newClient(t, cl.Addrs(), func(c *proposer.Config) { c.Events = n.events() })
	ctx := ctxT(t)
	big := make([]byte, proposer.MaxValueSize+1)
	longKey := bytes.Repeat([]byte("k"), proposer.MaxKeySize+1)
	for name, err := range map[string]error{
		"get empty key":   func() error { _, err := c.Get(ctx, nil); return err }(),
		"put empty key":   func() error { _, err := c.Put(ctx, []byte{}, []byte("v")); return err }(),
		"put long key":    func() error { _, err := c.Put(ctx, longKey, []byte("v")); return err }(),
		"put big value":   func() error { _, err := c.Put(ctx, []byte("k"), big); return err }(),
		"cas big value":   func() error { _, err := c.CompareAndSwap(ctx, []byte("k"), 0, big); return err }(),
		"delete long key": c.Delete(ctx, longKey),
		"touch empty key": c.Touch(ctx, []byte("a"), nil),
	} {
		if !errors.Is(err, proposer.ErrInvalidArgument) {
			t.Errorf("%s: %v, want ErrInvalidArgument", name, err)
		}
	}
	if got := n.prepareItems.Load() + n.acceptItems.Load() + n.readItems.Load(); got != 0 {
		t.Errorf("%d items sent for refused input", got)
	}
	// A Change whose result is too large changes nothing.
	if _, err := c.Change(ctx, []byte("k"), func(proposer.Value, bool) ([]byte, error) { return big, nil }); !errors.Is(err, proposer.ErrInvalidArgument) {
		t.Errorf("Change to a big value: %v", err)
	}
	// The limits themselves are fine, and the acceptors agree.
	maxKey := bytes.Repeat([]byte("k"), proposer.MaxKeySize)
	maxVal := bytes.Repeat([]byte("v"), proposer.MaxValueSize)
	if _, err := c.Put(ctx, maxKey, maxVal); err != nil {
		t.Fatalf("Put at the limits: %v", err)
	}
	if v, err := c.Get(ctx, maxKey); err != nil || !bytes.Equal(v.Data, maxVal) {
		t.Fatalf("Get at the limits: %v", err)
	}
}

// TestConcurrentClients: several clients on shared and separate keys. Every
// acknowledged Put has a version of its own, and is readable: the final
// value of a key is the acknowledged Put with the highest version.
func TestConcurrentClients(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	const clients, workers, ops = 3, 4, 15
	cs := make([]*proposer.Client, clients)
	for i := range cs {
		cs[i] = newClient(t, cl.Addrs()[i:i+1], nil)
	}
	type ack struct {
		key     string
		version uint64
		data    string
	}
	var (
		mu      sync.Mutex
		acks    []ack
		unknown int
		wg      sync.WaitGroup
	)
	ctx := ctxT(t)
	for ci, c := range cs {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range ops {
					key := fmt.Sprintf("shared/%d", i%3)
					if i%2 == 1 {
						key = fmt.Sprintf("own/%d/%d", ci, w)
					}
					data := fmt.Sprintf("c%d-w%d-%d", ci, w, i)
					v, err := c.Put(ctx, []byte(key), []byte(data))
					mu.Lock()
					switch {
					case err == nil:
						acks = append(acks, ack{key, v.Version, data})
					case errors.Is(err, proposer.ErrUnknownOutcome):
						unknown++
					default:
						t.Errorf("Put(%s): %v", key, err)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	t.Logf("%d acknowledged, %d unknown", len(acks), unknown)
	last := map[string]ack{}
	seen := map[string]map[uint64]string{}
	for _, a := range acks {
		if seen[a.key] == nil {
			seen[a.key] = map[uint64]string{}
		}
		if d, dup := seen[a.key][a.version]; dup {
			t.Errorf("key %s: version %d acknowledged twice (%s, %s)", a.key, a.version, d, a.data)
		}
		seen[a.key][a.version] = a.data
		if a.version > last[a.key].version {
			last[a.key] = a
		}
	}
	reader := newClient(t, cl.Addrs(), nil)
	for key, a := range last {
		v := mustGet(t, reader, key)
		switch {
		case v.Version < a.version:
			t.Errorf("key %s: read version %d, but version %d was acknowledged", key, v.Version, a.version)
		case v.Version == a.version && string(v.Data) != a.data:
			t.Errorf("key %s: read %q at version %d, acknowledged %q", key, v.Data, v.Version, a.data)
		case v.Version > a.version && unknown == 0:
			t.Errorf("key %s: read version %d, newest acknowledged %d, no unknown outcomes", key, v.Version, a.version)
		}
	}
}

// TestCASRace: many goroutines on two clients compare-and-swap from the same
// version. Exactly one wins; the others get a mismatch.
func TestCASRace(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	cs := []*proposer.Client{newClient(t, cl.Addrs(), nil), newClient(t, cl.Addrs(), nil)}
	ctx := ctxT(t)
	for round := range 5 {
		key := []byte(fmt.Sprintf("cas/%d", round))
		base := mustPut(t, cs[0], string(key), "base")
		const n = 16
		results := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := cs[i%2]
				_, err := c.CompareAndSwap(ctx, key, base.Version, []byte(fmt.Sprintf("g%d", i)))
				var u *proposer.UnknownOutcomeError
				if errors.As(err, &u) {
					// Settle it: Applied counts as a win.
					res, _, rerr := c.Resolve(ctx, u)
					switch {
					case rerr != nil:
						err = rerr
					case res == proposer.Applied:
						err = nil
					case res == proposer.NotApplied:
						err = proposer.ErrVersionMismatch
					}
				}
				results[i] = err
			}()
		}
		wg.Wait()
		final := mustGet(t, cs[1], string(key))
		if final.Version != base.Version+1 {
			t.Fatalf("round %d: final version %d, want %d", round, final.Version, base.Version+1)
		}
		winners := 0
		for i, err := range results {
			switch {
			case err == nil:
				winners++
				if want := fmt.Sprintf("g%d", i); string(final.Data) != want {
					t.Errorf("round %d: goroutine %d won, but the value is %q", round, i, final.Data)
				}
			case errors.Is(err, proposer.ErrVersionMismatch):
			case errors.Is(err, proposer.ErrUnknownOutcome): // undecided: the value tells
				if want := fmt.Sprintf("g%d", i); string(final.Data) == want {
					winners++
				}
			default:
				t.Errorf("round %d: goroutine %d: %v", round, i, err)
			}
		}
		if winners != 1 {
			t.Errorf("round %d: %d winners, want 1 (%v)", round, winners, results)
		}
	}
}

// tally is a hot-key value: one counter per writer, so each writer can tell
// whether a change with an unknown outcome took effect.
type tally []uint64

func decodeTally(b []byte, n int) tally {
	t := make(tally, n)
	for i := range t {
		if len(b) >= 8*(i+1) {
			t[i] = binary.BigEndian.Uint64(b[8*i:])
		}
	}
	return t
}

func (t tally) encode() []byte {
	b := make([]byte, 8*len(t))
	for i, v := range t {
		binary.BigEndian.PutUint64(b[8*i:], v)
	}
	return b
}

// TestHotKeyIncrement: several clients increment one key with Change. The
// final count is exactly the number of increments that succeeded: unknown
// outcomes are settled with Resolve and the writer's own counter, and a
// definite failure (ErrNoQuorum after MaxRetries lost races) did nothing.
func TestHotKeyIncrement(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	const clients, perClient, incs = 3, 3, 20
	writers := clients * perClient
	cs := make([]*proposer.Client, clients)
	for i := range cs {
		cs[i] = newClient(t, cl.Addrs(), nil)
	}
	ctx := ctxT(t)
	key := []byte("hot")
	succeeded := make([]uint64, writers)
	var unknowns, definite atomic.Int64
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cs[w%clients]
			for range incs {
				_, err := c.Change(ctx, key, func(cur proposer.Value, _ bool) ([]byte, error) {
					tl := decodeTally(cur.Data, writers)
					tl[w]++
					return tl.encode(), nil
				})
				var u *proposer.UnknownOutcomeError
				if errors.As(err, &u) {
					unknowns.Add(1)
					res, cur, rerr := c.Resolve(ctx, u)
					switch {
					case rerr != nil:
						err = rerr
					case res == proposer.Applied:
						err = nil
					case res == proposer.NotApplied:
						continue
					default: // the writer's own counter tells
						if decodeTally(cur.Data, writers)[w] == succeeded[w]+1 {
							err = nil
						} else {
							continue
						}
					}
				}
				if errors.Is(err, proposer.ErrNoQuorum) {
					// Definite: lost to the other writers MaxRetries times.
					definite.Add(1)
					continue
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				succeeded[w]++
			}
		}()
	}
	wg.Wait()
	final := mustGet(t, cs[0], string(key))
	tl := decodeTally(final.Data, writers)
	var total uint64
	for w := range writers {
		total += succeeded[w]
		if tl[w] != succeeded[w] {
			t.Errorf("writer %d: counter %d, %d increments succeeded", w, tl[w], succeeded[w])
		}
	}
	if final.Version != total {
		t.Errorf("final version %d, %d increments succeeded", final.Version, total)
	}
	if total == 0 {
		t.Error("no increment succeeded")
	}
	t.Logf("%d increments, %d unknown outcomes settled, %d definite failures", total, unknowns.Load(), definite.Load())
}

// TestCombining: concurrent changes of one key from one client share rounds;
// each caller still gets its own version.
func TestCombining(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	var n counters
	c := newClient(t, cl.Addrs(), func(c *proposer.Config) { c.Events = n.events() })
	ctx := ctxT(t)
	const puts = 200
	versions := make([]uint64, puts)
	var wg sync.WaitGroup
	for i := range puts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Put(ctx, []byte("combined"), []byte(fmt.Sprint(i)))
			if err != nil {
				t.Errorf("Put %d: %v", i, err)
				return
			}
			if string(v.Data) != fmt.Sprint(i) {
				t.Errorf("Put %d returned data %q", i, v.Data)
			}
			versions[i] = v.Version
		}()
	}
	wg.Wait()
	slices.Sort(versions)
	for i, v := range versions {
		if v != uint64(i+1) {
			t.Fatalf("versions %v: want 1..%d, each once", versions, puts)
		}
	}
	if r := n.rounds.Load(); r >= puts {
		t.Errorf("%d rounds for %d concurrent puts: no combining", r, puts)
	} else {
		t.Logf("%d puts in %d rounds", puts, r)
	}
}

// TestOneRoundTrip: the second change of a key by the same client sends no
// prepare (docs/design.md §2.4); another client's change drops the promise's value
// and the next change of the first client still comes out right.
func TestOneRoundTrip(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	var n counters
	c := newClient(t, cl.Addrs(), func(c *proposer.Config) { c.Events = n.events() })
	mustPut(t, c, "k", "1")
	if n.prepareItems.Load() == 0 || n.rounds.Load() != 1 || n.fastRounds.Load() != 0 {
		t.Fatalf("first Put: %d prepares, %d rounds, %d fast", n.prepareItems.Load(), n.rounds.Load(), n.fastRounds.Load())
	}
	if v := mustPut(t, c, "k", "2"); v.Version != 2 {
		t.Fatalf("second Put = %+v", v)
	}
	if n.rounds.Load() != 2 || n.fastRounds.Load() != 1 {
		t.Errorf("second Put: %d rounds, %d fast, want one fast round", n.rounds.Load(), n.fastRounds.Load())
	}
	// The first Put sent one prepare per acceptor at most (the last may be
	// reported late); the second sent none.
	if got := n.prepareItems.Load(); got > 3 {
		t.Errorf("%d prepares for two Puts, want at most 3 (the first Put's)", got)
	}

	// Another client writes the key: the first client's cached promise is
	// broken, its fast attempt fails, and it retries with a prepare.
	other := newClient(t, cl.Addrs(), nil)
	mustPut(t, other, "k", "3")
	if v := mustPut(t, c, "k", "4"); v.Version != 4 {
		t.Fatalf("Put after another writer = %+v, want version 4", v)
	}
	if v := mustGet(t, other, "k"); v.Version != 4 || string(v.Data) != "4" {
		t.Fatalf("Get = %+v", v)
	}

	// With the cache disabled every change prepares.
	var m counters
	nc := newClient(t, cl.Addrs(), func(c *proposer.Config) { c.CacheSize = -1; c.Events = m.events() })
	mustPut(t, nc, "k2", "1")
	mustPut(t, nc, "k2", "2")
	if m.fastRounds.Load() != 0 || m.prepareItems.Load() < 4 {
		t.Errorf("cache disabled: %d fast rounds, %d prepares", m.fastRounds.Load(), m.prepareItems.Load())
	}
}

// TestStaleEpochRefresh: a higher epoch installed behind the client's back
// is adopted from the acceptors' refusal; operations keep succeeding.
func TestStaleEpochRefresh(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	var n counters
	c := newClient(t, cl.Addrs()[:1], func(c *proposer.Config) { c.Events = n.events() })
	mustPut(t, c, "k", "1") // caches a 1RTT promise under epoch 1
	if c.Config().Epoch != 1 {
		t.Fatalf("epoch %d", c.Config().Epoch)
	}
	next := cl.Config()
	next.Epoch++
	cl.Install(next)
	if v := mustPut(t, c, "k", "2"); v.Version != 2 {
		t.Fatalf("Put after the epoch change = %+v", v)
	}
	if got := c.Config().Epoch; got != next.Epoch {
		t.Fatalf("client epoch %d, want %d", got, next.Epoch)
	}
	if n.configs.Load() != 1 {
		t.Errorf("ConfigChanged called %d times", n.configs.Load())
	}
	// Reads refresh too.
	next.Epoch++
	cl.Install(next)
	if v := mustGet(t, c, "k"); v.Version != 2 || string(v.Data) != "2" {
		t.Fatalf("Get after the epoch change = %+v", v)
	}
	if got := c.Config().Epoch; got != next.Epoch {
		t.Fatalf("client epoch after Get %d, want %d", got, next.Epoch)
	}
	// A new client bootstraps at the newest epoch.
	if got := newClient(t, cl.Addrs()[2:], nil).Config().Epoch; got != next.Epoch {
		t.Errorf("new client epoch %d", got)
	}
}

// TestMembershipChange runs the docs/design.md §5 steps with a client working
// throughout: add a fourth acceptor (joint configuration P ≠ S, qp ≠ qa,
// rescan with Touch), then remove one.
func TestMembershipChange(t *testing.T) {
	cl := acceptortest.StartCluster(t, 4)
	cfg3, fourth := threeAndSpare(cl)

	c := newClient(t, cl.Addrs()[:1], nil)
	ctx := ctxT(t)
	var keys [][]byte
	want := map[string]string{}
	put := func(key, data string) {
		t.Helper()
		mustPut(t, c, key, data)
		if _, ok := want[key]; !ok {
			keys = append(keys, []byte(key))
		}
		want[key] = data
	}
	for i := range 20 {
		put(fmt.Sprintf("m/%d", i), "e2")
	}

	// Add a3: joint, rescan, final.
	joint, final, err := membership.Steps(cfg3, membership.Change{Kind: membership.Add, Member: fourth})
	if err != nil {
		t.Fatal(err)
	}
	if joint.PrepareQuorum == joint.AcceptQuorum || len(joint.PrepareSet()) == len(joint.AcceptSet()) {
		t.Fatalf("joint configuration %v is not P ≠ S, qp ≠ qa", joint)
	}
	cl.Install(joint)
	put("m/0", "joint")
	put("m/new", "joint")
	if err := c.Touch(ctx, keys...); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	if c.Config().Epoch != joint.Epoch {
		t.Fatalf("client epoch %d, want %d", c.Config().Epoch, joint.Epoch)
	}
	cl.Install(final)
	put("m/1", "final")

	// Remove a0: joint with P = S−a0, then final.
	a0, _ := final.MemberByID("a0")
	joint2, final2, err := membership.Steps(final, membership.Change{Kind: membership.Remove, Member: a0})
	if err != nil {
		t.Fatal(err)
	}
	cl.Install(joint2)
	put("m/2", "joint2")
	if err := c.Touch(ctx, keys...); err != nil {
		t.Fatalf("Touch: %v", err)
	}
	cl.Install(final2)
	cl.Kill(0) // gone for good: everything must live on a1..a3
	put("m/3", "final2")

	reader := newClient(t, cl.Addrs()[1:2], nil)
	for k, d := range want {
		if v := mustGet(t, reader, k); string(v.Data) != d {
			t.Errorf("key %s = %q, want %q", k, v.Data, d)
		}
	}
	if reader.Config().Epoch != final2.Epoch {
		t.Errorf("reader epoch %d, want %d", reader.Config().Epoch, final2.Epoch)
	}
}

func TestTouch(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	var n counters
	c := newClient(t, cl.Addrs(), func(c *proposer.Config) { c.Events = n.events() })
	var keys [][]byte
	for i := range 50 {
		k := fmt.Sprintf("t/%d", i)
		mustPut(t, c, k, k)
		keys = append(keys, []byte(k))
	}
	before := n.prepareItems.Load()
	if err := c.Touch(ctxT(t), append(keys, []byte("t/absent"))...); err != nil {
		t.Fatal(err)
	}
	if got := n.prepareItems.Load() - before; got < 51*2 {
		t.Errorf("Touch sent %d prepares, want a prepare quorum per key (no 1RTT)", got)
	}
	for _, k := range keys {
		if v := mustGet(t, c, string(k)); v.Version != 1 || string(v.Data) != string(k) {
			t.Errorf("after Touch %s = %+v", k, v)
		}
	}
	if _, err := c.Get(ctxT(t), []byte("t/absent")); !errors.Is(err, proposer.ErrNotFound) {
		t.Errorf("Touch created a key: %v", err)
	}
}

func TestOneAcceptorDown(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	mustPut(t, c, "k", "before")
	cl.Kill(1)
	if v := mustPut(t, c, "k", "during"); v.Version != 2 {
		t.Fatalf("Put with one acceptor down = %+v", v)
	}
	mustPut(t, c, "fresh", "x")
	if v := mustGet(t, c, "k"); string(v.Data) != "during" {
		t.Fatalf("Get = %+v", v)
	}
	if _, err := c.CompareAndSwap(ctxT(t), []byte("k"), 1, []byte("no")); !errors.Is(err, proposer.ErrVersionMismatch) {
		t.Fatalf("stale CAS with one acceptor down: %v", err)
	}
	cl.Restart(1)
	cl.Kill(2)
	if v := mustGet(t, c, "k"); string(v.Data) != "during" {
		t.Fatalf("Get with another acceptor down = %+v", v)
	}
	mustPut(t, c, "k", "after")
}

// TestNoQuorum: with two of three acceptors down nothing succeeds. Reads and
// changes that fail in the prepare phase fail definitely (ErrNoQuorum); a
// change whose accept was sent may be unknown; none is a false success.
func TestNoQuorum(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), func(c *proposer.Config) {
		c.MaxRetries = 2
		c.RequestTimeout = time.Second
	})
	ctx := ctxT(t)
	mustPut(t, c, "cached", "1") // leaves a 1RTT promise
	mustPut(t, c, "other", "1")
	cl.Kill(0)
	cl.Kill(2)
	if _, err := c.Get(ctx, []byte("other")); !errors.Is(err, proposer.ErrNoQuorum) {
		t.Errorf("Get: %v, want ErrNoQuorum", err)
	}
	if _, err := c.Put(ctx, []byte("fresh"), []byte("x")); !errors.Is(err, proposer.ErrNoQuorum) {
		t.Errorf("Put of a fresh key: %v, want ErrNoQuorum", err)
	}
	if _, err := c.CompareAndSwap(ctx, []byte("other"), 1, []byte("x")); !errors.Is(err, proposer.ErrNoQuorum) {
		t.Errorf("CAS: %v, want ErrNoQuorum", err)
	}
	_, err := c.Put(ctx, []byte("cached"), []byte("2"))
	var u *proposer.UnknownOutcomeError
	switch {
	case errors.As(err, &u):
		if u.Intended.Version != 2 || string(u.Intended.Data) != "2" {
			t.Errorf("unknown outcome intended %+v", u.Intended)
		}
	case errors.Is(err, proposer.ErrNoQuorum):
	default:
		t.Fatalf("Put of a cached key: %v, want ErrUnknownOutcome or ErrNoQuorum", err)
	}
	if errors.Is(err, proposer.ErrNoQuorum) && errors.Is(err, proposer.ErrUnknownOutcome) {
		t.Errorf("error is both definite and unknown: %v", err)
	}

	// Back to a quorum: the unknown outcome settles one way or the other,
	// and the value agrees with the answer. Any client can resolve it; a new
	// one does not wait for the first client's connections to come back.
	cl.Restart(0)
	cl.Restart(2)
	c2 := newClient(t, cl.Addrs(), nil)
	if u != nil {
		res, cur, err := c2.Resolve(ctx, u)
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		want := map[proposer.Resolution]string{proposer.Applied: "2", proposer.NotApplied: "1"}[res]
		if res == proposer.Undecided || string(cur.Data) != want {
			t.Fatalf("Resolve = %v with %+v", res, cur)
		}
		if v := mustGet(t, c2, "cached"); string(v.Data) != want {
			t.Fatalf("Get after Resolve = %+v, want %q", v, want)
		}
		t.Logf("unknown outcome resolved: %v", res)
	}
	if _, err := c2.Get(ctx, []byte("fresh")); !errors.Is(err, proposer.ErrNotFound) {
		t.Errorf("a Put that failed definitely left a value: %v", err)
	}
	mustPut(t, c2, "fresh", "y")
}

// TestRestartKeepsWrites: writers keep going while acceptors are killed and
// restarted one at a time; every acknowledged write survives.
func TestRestartKeepsWrites(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), func(c *proposer.Config) { c.RequestTimeout = time.Second })
	ctx := ctxT(t)
	const writers = 4
	var (
		mu    sync.Mutex
		acked = map[string]proposer.Value{}
		stop  atomic.Bool
		wg    sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				key := fmt.Sprintf("r/%d/%d", w, i%10)
				v, err := c.Put(ctx, []byte(key), []byte(fmt.Sprint(i)))
				if err != nil {
					if !errors.Is(err, proposer.ErrUnknownOutcome) && !errors.Is(err, proposer.ErrNoQuorum) {
						t.Errorf("Put: %v", err)
					}
					continue
				}
				mu.Lock()
				if v.Version > acked[key].Version {
					acked[key] = v
				}
				mu.Unlock()
			}
		}()
	}
	progress := func() {
		// Wait for a few more acknowledged writes (no sleeping).
		for range 20 {
			if _, err := c.Put(ctx, []byte("r/progress"), []byte("x")); err != nil {
				t.Errorf("progress Put: %v", err)
			}
		}
	}
	for i := range 3 {
		progress()
		cl.Kill(i)
		progress()
		cl.Restart(i)
	}
	progress()
	stop.Store(true)
	wg.Wait()

	cl.Kill(0)
	cl.Kill(1)
	cl.Kill(2)
	cl.Restart(0)
	cl.Restart(1)
	cl.Restart(2)
	reader := newClient(t, cl.Addrs(), nil)
	for key, a := range acked {
		v := mustGet(t, reader, key)
		if v.Version < a.Version || (v.Version == a.Version && !bytes.Equal(v.Data, a.Data)) {
			t.Errorf("key %s = %+v, acknowledged %+v", key, v, a)
		}
	}
	t.Logf("%d keys checked", len(acked))
}

// The client bootstraps from any endpoint that answers. GetConfig needs no
// admin token, even when the acceptors have one.
func TestBootstrap(t *testing.T) {
	cl := acceptortest.StartClusterWith(t, 3, func(_ int, o *acceptor.Options) { o.AdminToken = "s3cret" })
	ctx := ctxT(t)
	// A dead endpoint beside a live one is fine.
	dead := "127.0.0.1:1"
	c := newClient(t, []string{dead, cl.Addrs()[0]}, nil)
	mustPut(t, c, "k", "v")
	if !slices.EqualFunc(c.Config().Members, cl.Config().Members, func(a, b membership.Member) bool { return a == b }) {
		t.Errorf("config %v, want %v", c.Config(), cl.Config())
	}
	// No endpoint answers: the error says why, not only that time ran out.
	_, err := proposer.New(ctx, proposer.Config{Endpoints: []string{dead}, DialTimeout: 200 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("New with a dead endpoint: %v", err)
	}
	if _, err := proposer.New(ctx, proposer.Config{}); !errors.Is(err, proposer.ErrInvalidArgument) {
		t.Errorf("New without endpoints: %v", err)
	}
}

func TestClose(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c, err := proposer.New(context.Background(), proposer.Config{Endpoints: cl.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "k", "v")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Get(context.Background(), []byte("k")); !errors.Is(err, proposer.ErrClosed) {
		t.Errorf("Get after Close: %v", err)
	}
	if _, err := c.Put(context.Background(), []byte("k"), nil); !errors.Is(err, proposer.ErrClosed) {
		t.Errorf("Put after Close: %v", err)
	}
}

func TestContextCanceled(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Put(ctx, []byte("k"), []byte("v")); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: %v", err)
	}
	if _, err := c.Get(ctx, []byte("k")); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: %v", err)
	}
	if _, err := c.Get(context.Background(), []byte("k")); !errors.Is(err, proposer.ErrNotFound) {
		t.Errorf("a canceled Put left a value: %v", err)
	}
}

func TestResolveRejectsOtherErrors(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	c := newClient(t, cl.Addrs(), nil)
	if _, _, err := c.Resolve(ctxT(t), errors.New("x")); !errors.Is(err, proposer.ErrInvalidArgument) {
		t.Errorf("Resolve(other error): %v", err)
	}
}

// TestRediscoverWhenEveryMemberMoved: every acceptor comes back on a new
// address (pods with new IPs) while the client is idle, so no member of the
// configuration it knows answers, and none can tell it about the new one.
// The client asks its bootstrap endpoint (here a name that, like a
// Kubernetes Service, follows the pods) again and carries on.
func TestRediscoverWhenEveryMemberMoved(t *testing.T) {
	cl := acceptortest.StartCluster(t, 3)
	// Port 1 on localhost stands for the Service: the dialer sends it to
	// wherever acceptor 0 is now.
	const bootstrap = "localhost:1"
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		if _, port, _ := net.SplitHostPort(addr); port == "1" {
			addr = cl.Addrs()[0]
		}
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	c := newClient(t, []string{bootstrap}, func(cfg *proposer.Config) {
		cfg.DialOptions = append(cfg.DialOptions, grpc.WithContextDialer(dial))
	})
	ctx := context.Background()
	if _, err := c.Put(ctx, []byte("k"), []byte("before")); err != nil {
		t.Fatalf("Put before the move: %v", err)
	}
	old := cl.Addrs()
	for i := range 3 {
		cl.Move(i)
	}
	for i, a := range cl.Addrs() {
		if a == old[i] {
			t.Fatalf("acceptor %d did not move (%s)", i, a)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := c.Get(ctx, []byte("k"))
	if err != nil {
		t.Fatalf("Get after every member moved: %v", err)
	}
	if string(v.Data) != "before" {
		t.Fatalf("Get = %q, want %q", v.Data, "before")
	}
	if _, err := c.Put(ctx, []byte("k"), []byte("after")); err != nil {
		t.Fatalf("Put after every member moved: %v", err)
	}
}

// threeAndSpare installs, on a cluster of four started by acceptortest, a
// stable configuration of a0..a2 at the next epoch and returns it with the
// spare member a3, for tests that add a fourth member.
func threeAndSpare(cl *acceptortest.Cluster) (membership.Config, membership.Member) {
	start := cl.Config()
	var three []membership.Member
	var fourth membership.Member
	for _, m := range start.Members {
		if m.ID == "a3" {
			fourth = m
		} else {
			three = append(three, m)
		}
	}
	cfg3 := membership.Stable(start.Epoch+1, three...)
	cl.Install(cfg3)
	return cfg3, fourth
}
