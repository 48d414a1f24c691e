package proposer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"

	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// dialOptions are the options of every connection but its transport
// credentials (security.creds).
func dialOptions(cfg Config) []grpc.DialOption {
	return append([]grpc.DialOption{
		// Reconnect soon after an acceptor restarts; the per-RPC deadline,
		// not the connection, bounds how long a round waits.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           grpcbackoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 500 * time.Millisecond},
			MinConnectTimeout: cfg.DialTimeout,
		}),
		// Prepare and read responses of a full batch can carry many values.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)),
	}, cfg.DialOptions...)
}

type batcherKey struct {
	addr   string
	method method
}

// batcher returns the batcher of one method to one acceptor, dialling the
// acceptor on first use. One connection per acceptor serves all methods.
func (c *Client) batcher(addr string, m method) *batcher {
	c.net.Lock()
	defer c.net.Unlock()
	k := batcherKey{addr, m}
	if b := c.net.batchers[k]; b != nil {
		return b
	}
	conn, dialErr := c.connLocked(addr)
	b := &batcher{c: c, addr: addr, method: m, dial: dialErr}
	if conn != nil {
		b.api = kshakav1.NewAcceptorClient(conn)
	}
	if dialErr == nil {
		c.net.batchers[k] = b // a failed dial is retried on next use
	}
	return b
}

// connLocked returns the connection to the acceptor at addr, dialling it on
// first use. c.net is held.
func (c *Client) connLocked(addr string) (*grpc.ClientConn, error) {
	if conn, ok := c.net.conns[addr]; ok {
		return conn, nil
	}
	conn, err := grpc.NewClient(addr, append([]grpc.DialOption{grpc.WithTransportCredentials(c.sec.transport())}, c.dialOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("while dialling acceptor %s: %w", addr, err)
	}
	c.net.conns[addr] = conn
	return conn, nil
}

// admin returns the Admin service of the acceptor at addr over the
// client's connection to it.
func (c *Client) admin(addr string) (kshakav1.AdminClient, error) {
	c.net.Lock()
	defer c.net.Unlock()
	conn, err := c.connLocked(addr)
	if err != nil {
		return nil, err
	}
	return kshakav1.NewAdminClient(conn), nil
}

// config returns the current configuration; callers must not modify it.
func (c *Client) config() membership.Config {
	c.conf.RLock()
	defer c.conf.RUnlock()
	return c.conf.cfg
}

// adopt installs cfg if its epoch is higher than the current one (docs/design.md §3:
// always adopt the highest epoch seen).
func (c *Client) adopt(cfg membership.Config) bool {
	c.conf.Lock()
	if cfg.Epoch <= c.conf.cfg.Epoch {
		c.conf.Unlock()
		return false
	}
	c.conf.cfg = cfg
	c.epoch.Store(cfg.Epoch)
	c.conf.Unlock()
	if f := c.cfg.Events.ConfigChanged; f != nil {
		f(cfg.Clone())
	}
	return true
}

// rediscoverAfter is how many failed attempts in a row make a change ask the
// bootstrap Endpoints for the configuration again, and rediscoverEvery how
// often a client does it at most.
const (
	rediscoverAfter = 2
	rediscoverEvery = time.Second
)

// rediscover asks the bootstrap Endpoints for the configuration again, in
// the background, and adopts it when its epoch is higher. Attempts learn a
// newer configuration from the members' stale-epoch replies; this covers the
// case where no member of the known configuration answers any more (every
// pod came back with a new address, or they were all replaced), which
// Endpoints such as a Kubernetes Service name still reach. The caller is
// inside a public call or a goroutine counted in c.wg.
func (c *Client) rediscover() {
	now := time.Now().UnixNano()
	last := c.lastDiscovery.Load()
	if now-last < int64(rediscoverEvery) || !c.lastDiscovery.CompareAndSwap(last, now) {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		cfg, err := discover(c.ctx, c.cfg, c.sec, c.dialOpts)
		if err != nil {
			return // the next failed attempts try again
		}
		c.adopt(cfg)
	}()
}

// discover asks every endpoint for its configuration and returns the one
// with the highest epoch among those that answered.
func discover(ctx context.Context, cfg Config, sec *security, opts []grpc.DialOption) (membership.Config, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	type result struct {
		cfg membership.Config
		err error
	}
	results := make(chan result, len(cfg.Endpoints))
	for _, ep := range cfg.Endpoints {
		go func() {
			c, err := fetchConfig(ctx, ep, sec, opts)
			results <- result{c, err}
		}()
	}
	var (
		best membership.Config
		errs []error
	)
	for range cfg.Endpoints {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		if r.cfg.Epoch > best.Epoch {
			best = r.cfg
		}
		cancel() // one answer suffices; the others finish at once
	}
	if best.Epoch == 0 {
		return best, fmt.Errorf("while discovering the configuration: %w", errors.Join(errs...))
	}
	return best, nil
}

// fetchRetry is how often fetchConfig asks again an acceptor that is not
// reachable yet.
const fetchRetry = 100 * time.Millisecond

// fetchConfig asks the acceptor at addr for its configuration until it
// answers or ctx ends, and at once gives up on a refusal or a failed TLS
// handshake, which asking again does not cure (an *AccessError). After ctx
// ends it reports the last failure, not only the deadline.
func fetchConfig(ctx context.Context, addr string, sec *security, opts []grpc.DialOption) (membership.Config, error) {
	conn, err := adminclient.Dial(addr, sec.creds, "", opts...)
	if err != nil {
		return membership.Config{}, err
	}
	defer func() { _ = conn.Close() }()
	var last error
	for {
		resp, err := conn.GetConfig(ctx, &kshakav1.GetConfigRequest{})
		if err == nil {
			return configOf(addr, resp)
		}
		err = sec.describe(addr, err)
		if errors.Is(err, ErrAccess) {
			return membership.Config{}, fmt.Errorf("while getting the configuration: %w", err)
		}
		if ctx.Err() == nil || last == nil {
			last = err
		}
		t := time.NewTimer(fetchRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return membership.Config{}, fmt.Errorf("while getting the configuration from %s: %w", addr, last)
		case <-t.C:
		}
	}
}

func configOf(addr string, resp *kshakav1.GetConfigResponse) (membership.Config, error) {
	if resp.GetConfig().GetEpoch() == 0 {
		return membership.Config{}, fmt.Errorf("acceptor %s has no configuration yet", addr)
	}
	c, err := configFromProto(resp.GetConfig())
	if err != nil {
		return membership.Config{}, fmt.Errorf("configuration from %s: %w", addr, err)
	}
	return c, nil
}

func configFromProto(p *kshakav1.Config) (membership.Config, error) {
	c := wire.ConfigFromProto(p)
	slices.SortFunc(c.Members, func(a, b membership.Member) int { return strings.Compare(a.ID, b.ID) })
	if err := c.Validate(); err != nil {
		return membership.Config{}, err
	}
	return c, nil
}
