package proposer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/internal/wire"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// method is the kind of request a batcher sends: the key machine's kind of
// request, so what the machine asks for goes to its batcher unchanged.
type method = keyproc.Kind

const (
	methodPrepare = keyproc.Prepare
	methodAccept  = keyproc.Accept
	methodRead    = keyproc.Read
)

// phase collects the replies to one phase of one round: one item per target,
// one reply per item. ch has room for every reply, so senders never block.
// Once the phase is over, dead is set and items not yet sent are dropped,
// unless keep is set (accepts: they bring slow acceptors up to date, and an
// accept that was handed to a batcher counts as sent anyway).
type phase struct {
	ch   chan memberReply
	keep bool
	dead atomic.Bool
}

func (p *phase) dropped() bool { return !p.keep && p.dead.Load() }

func newPhase(targets int) *phase { return &phase{ch: make(chan memberReply, targets)} }

// memberReply is one acceptor's answer for one key. A prepare's or read's
// is classified here (reply); an accept's is passed on as the wire carries
// it (answer, refused) and the key's machine classifies it
// (round.ClassifyAccept).
type memberReply struct {
	inc      uint64
	reply    round.Reply        // prepare, read
	answer   round.AcceptAnswer // accept
	refused  bool               // accept: the request was refused as a whole (stale epoch, not admitted)
	accepted register.Ballot
	value    register.Value
	conflict register.Ballot
	err      error
}

// item is one key's request to one acceptor.
type item struct {
	epoch  uint64
	key    []byte
	ballot register.Ballot // prepare, accept
	next   register.Ballot // accept
	value  register.Value  // accept
	inc    uint64          // the member's incarnation, for the reply
	ph     *phase
}

func (it *item) size() int { return len(it.key) + len(it.value.Data) + 64 }

// takeBatch picks the next batch from a queue, in order: items of the first
// live item's epoch and member incarnation (a request carries one of each), at most one per key (the
// acceptor refuses duplicates), at most maxItems items and maxBytes bytes
// (a single item always goes). Items of ended phases are dropped; the rest
// stay queued in order.
func takeBatch(q []*item, maxItems, maxBytes int) (batch, rest []*item) {
	var (
		epoch uint64
		inc   uint64
		bytes int
		keys  = map[string]struct{}{}
	)
	for i, it := range q {
		if it.ph.dropped() {
			continue
		}
		if len(batch) == maxItems {
			for _, it := range q[i:] {
				if !it.ph.dropped() {
					rest = append(rest, it)
				}
			}
			break
		}
		if len(batch) == 0 {
			epoch, inc = it.epoch, it.inc
		}
		_, dup := keys[string(it.key)]
		if it.epoch != epoch || it.inc != inc || dup || (len(batch) > 0 && bytes+it.size() > maxBytes) {
			rest = append(rest, it)
			continue
		}
		batch = append(batch, it)
		keys[string(it.key)] = struct{}{}
		bytes += it.size()
	}
	return batch, rest
}

// batcher sends one kind of request to one acceptor. It is self-clocked: at
// most one request is in flight, and while it is, the next batch fills up.
type batcher struct {
	c      *Client
	addr   string
	method method
	api    kshakav1.AcceptorClient // nil when the address could not be dialled
	dial   error

	mu struct {
		sync.Mutex
		q    []*item
		busy bool
	}
}

// add queues it and starts a sender if none is running.
func (b *batcher) add(it *item) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mu.q = append(b.mu.q, it)
	if !b.mu.busy {
		b.mu.busy = true
		b.c.wg.Add(1)
		go b.run()
	}
}

func (b *batcher) run() {
	defer b.c.wg.Done()
	for {
		b.mu.Lock()
		var batch []*item
		batch, b.mu.q = takeBatch(b.mu.q, b.c.cfg.MaxBatch, maxBatchBytes)
		if len(batch) == 0 {
			b.mu.busy = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.send(batch)
	}
}

func (b *batcher) send(batch []*item) {
	replies := b.exchange(b.c.ctx, batch)
	for i, it := range batch {
		it.ph.ch <- replies[i]
	}
}

// exchange sends batch as one request now and returns each item's reply
// (with the item's incarnation). The request ends with ctx or after
// RequestTimeout.
func (b *batcher) exchange(ctx context.Context, batch []*item) []memberReply {
	start := time.Now()
	replies, err := b.call(ctx, batch)
	if f := b.c.cfg.Events.RPCDone; f != nil {
		f(RPCInfo{Addr: b.addr, Method: b.method.String(), Items: len(batch), Duration: time.Since(start), Err: err})
	}
	for i, it := range batch {
		replies[i].inc = it.inc
	}
	return replies
}

// call sends batch and classifies each item's reply.
func (b *batcher) call(ctx context.Context, batch []*item) ([]memberReply, error) {
	if b.api == nil {
		return failAll(len(batch), memberReply{reply: round.Lost, err: b.dial}), b.dial
	}
	ctx, cancel := context.WithTimeout(ctx, b.c.cfg.RequestTimeout)
	defer cancel()
	epoch, inc := batch[0].epoch, batch[0].inc
	switch b.method {
	case methodPrepare:
		req := &kshakav1.PrepareRequest{Epoch: epoch, Incarnation: inc, Items: make([]*kshakav1.PrepareItem, len(batch))}
		for i, it := range batch {
			req.Items[i] = &kshakav1.PrepareItem{Key: it.key, Ballot: wire.BallotToProto(it.ballot)}
		}
		resp, err := b.api.Prepare(ctx, req)
		if out, err, done := b.check(len(batch), err, resp.GetStaleConfig(), len(resp.GetResults())); done {
			return out, err
		}
		out := make([]memberReply, len(batch))
		for i, r := range resp.GetResults() {
			out[i] = memberReply{
				reply:    round.Nack,
				accepted: wire.BallotFromProto(r.GetAccepted()),
				value:    wire.ValueFromProto(r.GetValue()),
				conflict: wire.BallotFromProto(r.GetConflict()),
			}
			if r.GetOk() {
				out[i].reply = round.Ack
			}
		}
		return out, nil
	case methodAccept:
		req := &kshakav1.AcceptRequest{Epoch: epoch, Incarnation: inc, Items: make([]*kshakav1.AcceptItem, len(batch))}
		for i, it := range batch {
			req.Items[i] = &kshakav1.AcceptItem{
				Key: it.key, Ballot: wire.BallotToProto(it.ballot), Value: wire.ValueToProto(it.value),
			}
			if !it.next.IsZero() {
				req.Items[i].Next = wire.BallotToProto(it.next)
			}
		}
		resp, err := b.api.Accept(ctx, req)
		if out, err, done := b.check(len(batch), err, resp.GetStaleConfig(), len(resp.GetResults())); done {
			return out, err
		}
		out := make([]memberReply, len(batch))
		for i, r := range resp.GetResults() {
			a := round.AcceptAnswer{OK: r.GetOk()}
			if !a.OK {
				a.Conflict, a.Accepted = true, wire.BallotFromProto(r.GetAccepted())
			}
			out[i] = memberReply{answer: a, conflict: wire.BallotFromProto(r.GetConflict())}
		}
		return out, nil
	default:
		req := &kshakav1.ReadRequest{Epoch: epoch, Incarnation: inc, Keys: make([][]byte, len(batch))}
		for i, it := range batch {
			req.Keys[i] = it.key
		}
		resp, err := b.api.Read(ctx, req)
		if out, err, done := b.check(len(batch), err, resp.GetStaleConfig(), len(resp.GetResults())); done {
			return out, err
		}
		out := make([]memberReply, len(batch))
		for i, r := range resp.GetResults() {
			out[i] = memberReply{reply: round.Ack, accepted: wire.BallotFromProto(r.GetAccepted()), value: wire.ValueFromProto(r.GetValue())}
		}
		return out, nil
	}
}

// check handles what a whole response can say: an RPC error, a stale epoch
// (the configuration is adopted and every item counts as refused), or a
// malformed response. done reports that out holds the replies.
func (b *batcher) check(n int, err error, stale *kshakav1.Config, results int) (out []memberReply, _ error, done bool) {
	switch {
	case err != nil:
		err = b.c.sec.describe(b.addr, err)
		return failAll(n, b.failure(err)), err, true
	case stale != nil:
		err := fmt.Errorf("acceptor %s: stale configuration epoch", b.addr)
		if cfg, cerr := configFromProto(stale); cerr == nil {
			b.c.adopt(cfg)
		} else {
			err = fmt.Errorf("%w; its configuration is invalid: %w", err, cerr)
		}
		return failAll(n, b.refused(err)), err, true
	case results != n:
		err := fmt.Errorf("acceptor %s: %d results for %d items", b.addr, results, n)
		return failAll(n, memberReply{reply: round.Lost, err: err}), err, true
	}
	return nil, nil, false
}

func failAll(n int, r memberReply) []memberReply {
	out := make([]memberReply, n)
	for i := range out {
		out[i] = r
	}
	return out
}

// refused is the reply for a whole request refused before any key was
// looked at (a stale epoch). A prepare or read refused so did nothing. An
// accept may still have landed through an earlier delivery of the same
// request; the key's machine decides (round.ClassifyAccept counts it as
// Lost).
func (b *batcher) refused(err error) memberReply {
	if b.method == methodAccept {
		return memberReply{refused: true, err: err}
	}
	return memberReply{reply: round.Nack, err: err}
}

// failure is the reply for a request that failed with an RPC error. For
// prepares and reads, classify decides. For an accept, the error says what
// the wire says, and the key's machine classifies it: an invalid request
// (every delivery of it is refused, so none landed; a ballot too far ahead
// of the acceptor's clock is not such a request: the clock moves on) or a
// refused incarnation (not admitted: a refusal as a whole, which proves
// nothing about earlier deliveries).
func (b *batcher) failure(err error) memberReply {
	code := status.Code(err)
	if b.method == methodAccept {
		return memberReply{
			answer:  round.AcceptAnswer{Invalid: code == codes.InvalidArgument && !tooFarAhead(err)},
			refused: code == codes.FailedPrecondition,
			err:     err,
		}
	}
	return memberReply{reply: classify(code), err: err}
}

// classify maps an RPC error of a prepare or read to a reply: codes that
// say the request was refused before anything was written are Nack;
// everything else (timeouts, unavailable, transport errors) is Lost.
func classify(code codes.Code) round.Reply {
	switch code {
	case codes.FailedPrecondition, // not admitted (docs/design.md §4)
		codes.InvalidArgument, // refused, nothing written
		codes.PermissionDenied,
		codes.Unauthenticated,
		codes.Unimplemented:
		return round.Nack
	}
	return round.Lost
}

// tooFarAhead reports whether err is an acceptor's refusal of a ballot too
// far ahead of its clock (register.TooFarAheadReason).
func tooFarAhead(err error) bool {
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == register.ErrorDomain && info.GetReason() == register.TooFarAheadReason {
			return true
		}
	}
	return false
}
