package proposer

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Limits the acceptors enforce by default. The client refuses larger input
// before sending anything.
const (
	// MaxKeySize is the largest key, in bytes. Keys must not be empty.
	MaxKeySize = 1 << 10
	// MaxValueSize is the largest value, in bytes.
	MaxValueSize = 1 << 20
)

// Defaults of Config.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 2 * time.Second
	DefaultCacheSize      = 1 << 16
	DefaultMaxBatch       = 256
	DefaultMaxRetries     = 10
)

// Backoff between retries of definite failures: full jitter over a window
// that starts at the average round time (at least backoffBase) and doubles
// up to backoffMax.
const (
	backoffBase = 2 * time.Millisecond
	backoffMax  = 500 * time.Millisecond
	// maxConflicts bounds the attempts a change may lose to other
	// proposers (keyproc.Config.MaxConflicts): at the backoff limit that
	// is minutes, so the caller's context ends first (ErrContention).
	maxConflicts = 1000
)

// maxBatchBytes bounds the keys and values of one batched request. A single
// item always goes alone, so a request never exceeds what an acceptor at its
// smallest message limit (one key, one value and framing) receives.
const maxBatchBytes = 1 << 20

// Config configures a Client. The zero value of every field but Endpoints
// means its default.
type Config struct {
	// Endpoints are bootstrap acceptor addresses (host:port); any one that
	// answers suffices. The client learns the members from it.
	Endpoints []string
	// TLSDir secures the connections to the acceptors with the files of a
	// directory in the kubernetes.io/tls layout, as a mounted Secret (the
	// cluster's kc-client-tls) holds them: ca.crt, the bundle of CAs the
	// acceptors' certificates must be signed by, and tls.crt with tls.key,
	// the client certificate for mutual TLS (its Subject O must be
	// kshaka:client, or kshaka:admin). tls.crt and tls.key may be absent
	// (TLS without a client certificate). The files are reloaded when they
	// change (polled every 2s; contents that do not load keep the current
	// ones, reported once to Events.TLSReload); each new connection uses
	// the current ones. Acceptor certificates are verified against the
	// dialled host, or TLSServerName. Mutually exclusive with TLS.
	TLSDir string
	// TLS secures the connections to the acceptors with a fixed
	// configuration; nil (and no TLSDir) means plaintext. Mutually
	// exclusive with TLSDir.
	TLS *tls.Config
	// TLSServerName, when set, is the name verified in every acceptor's
	// certificate instead of the dialled host (with TLS, it replaces
	// TLS.ServerName).
	TLSServerName string
	// DialTimeout bounds the discovery of the configuration in New and each
	// connection attempt. Default 5s.
	DialTimeout time.Duration
	// RequestTimeout bounds each round trip to the acceptors (one phase of a
	// round). Default 2s.
	RequestTimeout time.Duration
	// CacheSize is the number of keys the one-round-trip cache holds
	// (docs/design.md §2.4). Default 65536; negative disables the cache.
	CacheSize int
	// MaxBatch is the largest number of items in one request to one
	// acceptor. Default 256.
	MaxBatch int
	// MaxRetries is how many times a change is retried after a definite
	// failure (nothing was accepted). Default 10; negative means no retries.
	MaxRetries int
	// ID, when not 0, is mixed into the proposer ID of the client's
	// ballots, never used alone (docs/design.md §2.1): its low 16 bits become the
	// top 16 bits of the proposer ID, so ballots show which configured
	// client issued them, and the other 48 bits are random, picked anew by
	// every New. So clients never share ballots, whatever their
	// configuration: not two running at once, and not a client restarted
	// with the same ID, whose predecessor's counter may have run ahead of
	// the wall clock (it fast-forwards past every conflict). 0 (the
	// default): all 64 bits are random.
	ID uint64
	// MaxBallotLead bounds how far the client fast-forwards its ballot
	// counter: not to a ballot more than this ahead of its wall clock in
	// microseconds (docs/design.md §2.1). A key holding such a ballot fails with an
	// error that says so (check the clocks) instead of pushing the one
	// counter of every key out of the acceptors' bounds. Match the
	// acceptors' --max-ballot-lead. Default 10 minutes.
	MaxBallotLead time.Duration
	// AdminToken is ignored: acceptors answer GetConfig, the only Admin
	// call a client makes, without the admin token, and a data client
	// should not hold it.
	//
	// Deprecated: the field has no effect; remove it from your Config.
	AdminToken string
	// Events receives optional callbacks for metrics and tracing.
	Events Events
	// DialOptions are added to the client's own gRPC dial options, after
	// them: a custom dialer or resolver (the operator's tests reach
	// acceptors behind DNS names this way), interceptors, keepalives.
	DialOptions []grpc.DialOption
}

// Events are optional callbacks, each called synchronously from the
// client's goroutines; they must be fast and safe for concurrent use. A nil
// callback is skipped. The library never logs.
type Events struct {
	// RoundDone is called after every attempt of a round.
	RoundDone func(RoundInfo)
	// RPCDone is called after every request to an acceptor.
	RPCDone func(RPCInfo)
	// ConfigChanged is called when the client adopts a configuration with a
	// higher epoch.
	ConfigChanged func(membership.Config)
	// TLSReload is called, with Config.TLSDir, after a poll found new
	// files: with nil when they were loaded, with the error when they did
	// not load (the current ones stay in use; once per bad content).
	TLSReload func(err error)
}

// RoundInfo describes one attempt of a round.
type RoundInfo struct {
	Key []byte
	// Read is true for a quorum read, false for a change (prepare, accept).
	Read bool
	// FastPath is true for a change that skipped the prepare (1RTT cache).
	FastPath bool
	// Changes is the number of combined changes the round applied.
	Changes int
	// Outcome is "success", "failed" or "unknown".
	Outcome  string
	Duration time.Duration
}

// RPCInfo describes one request to one acceptor.
type RPCInfo struct {
	Addr string
	// Method is "prepare", "accept" or "read".
	Method string
	// Items is the number of keys in the batch.
	Items    int
	Duration time.Duration
	// Err is the transport or status error, if any.
	Err error
}

func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	if c.MaxBallotLead == 0 {
		c.MaxBallotLead = register.DefaultMaxLead
	}
	return c
}

// validate reports every problem of a Config with defaults applied.
func (c Config) validate() error {
	var errs []error
	if len(c.Endpoints) == 0 {
		errs = append(errs, errors.New("no endpoints"))
	}
	for i, e := range c.Endpoints {
		if e == "" {
			errs = append(errs, fmt.Errorf("endpoint %d is empty", i))
		}
	}
	if c.DialTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative dial timeout %v", c.DialTimeout))
	}
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("negative request timeout %v", c.RequestTimeout))
	}
	if c.MaxBallotLead < 0 {
		errs = append(errs, fmt.Errorf("negative max ballot lead %v", c.MaxBallotLead))
	}
	if c.TLS != nil && c.TLSDir != "" {
		errs = append(errs, errors.New("set TLS or TLSDir, not both"))
	}
	if c.TLSServerName != "" && c.TLS == nil && c.TLSDir == "" {
		errs = append(errs, errors.New("TLSServerName needs TLS or TLSDir"))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("negative max batch %d", c.MaxBatch))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidArgument, err)
	}
	return nil
}
