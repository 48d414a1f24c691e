package proposer

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/register"
)

func mkItem(epoch uint64, key string, data int, ph *phase) *item {
	return &item{epoch: epoch, key: []byte(key), value: register.Value{Data: make([]byte, data)}, ph: ph}
}

func keysOf(items []*item) string {
	s := ""
	for _, it := range items {
		s += fmt.Sprintf("%d/%s ", it.epoch, it.key)
	}
	return s
}

func TestTakeBatch(t *testing.T) {
	live := newPhase(100)
	dead := newPhase(100)
	dead.dead.Store(true)
	kept := newPhase(100)
	kept.keep = true
	kept.dead.Store(true)
	for _, tc := range []struct {
		name        string
		q           []*item
		max, bytes  int
		batch, rest string
	}{
		{name: "empty", max: 10, bytes: 1 << 20},
		{
			name: "all fit", max: 10, bytes: 1 << 20,
			q:     []*item{mkItem(1, "a", 0, live), mkItem(1, "b", 0, live)},
			batch: "1/a 1/b ",
		},
		{
			name: "max items keeps order", max: 2, bytes: 1 << 20,
			q:     []*item{mkItem(1, "a", 0, live), mkItem(1, "b", 0, live), mkItem(1, "c", 0, live), mkItem(1, "d", 0, live)},
			batch: "1/a 1/b ", rest: "1/c 1/d ",
		},
		{
			name: "one epoch per request", max: 10, bytes: 1 << 20,
			q:     []*item{mkItem(2, "a", 0, live), mkItem(3, "b", 0, live), mkItem(2, "c", 0, live)},
			batch: "2/a 2/c ", rest: "3/b ",
		},
		{
			name: "one incarnation per request", max: 10, bytes: 1 << 20,
			q: func() []*item {
				a, b, c := mkItem(2, "a", 0, live), mkItem(2, "b", 0, live), mkItem(2, "c", 0, live)
				a.inc, b.inc, c.inc = 7, 8, 7
				return []*item{a, b, c}
			}(),
			batch: "2/a 2/c ", rest: "2/b ",
		},
		{
			name: "duplicate keys wait", max: 10, bytes: 1 << 20,
			q:     []*item{mkItem(1, "a", 0, live), mkItem(1, "a", 0, live), mkItem(1, "b", 0, live)},
			batch: "1/a 1/b ", rest: "1/a ",
		},
		{
			name: "dead phases dropped, accepts kept", max: 10, bytes: 1 << 20,
			q:     []*item{mkItem(1, "a", 0, dead), mkItem(1, "b", 0, kept), mkItem(1, "c", 0, dead)},
			batch: "1/b ",
		},
		{
			name: "dead dropped from the rest too", max: 1, bytes: 1 << 20,
			q:     []*item{mkItem(1, "a", 0, live), mkItem(1, "b", 0, dead), mkItem(1, "c", 0, live)},
			batch: "1/a ", rest: "1/c ",
		},
		{
			name: "bytes bound, a big item goes alone", max: 10, bytes: 1000,
			q:     []*item{mkItem(1, "a", 5000, live), mkItem(1, "b", 10, live)},
			batch: "1/a ", rest: "1/b ",
		},
		{
			name: "bytes bound skips a big item but takes small ones", max: 10, bytes: 1000,
			q:     []*item{mkItem(1, "a", 10, live), mkItem(1, "b", 5000, live), mkItem(1, "c", 10, live)},
			batch: "1/a 1/c ", rest: "1/b ",
		},
		{
			name: "first live item sets the epoch", max: 10, bytes: 1 << 20,
			q:     []*item{mkItem(1, "a", 0, dead), mkItem(2, "b", 0, live), mkItem(1, "c", 0, live)},
			batch: "2/b ", rest: "1/c ",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			batch, rest := takeBatch(tc.q, tc.max, tc.bytes)
			if got := keysOf(batch); got != tc.batch {
				t.Errorf("batch = %q, want %q", got, tc.batch)
			}
			if got := keysOf(rest); got != tc.rest {
				t.Errorf("rest = %q, want %q", got, tc.rest)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		want   round.Reply // prepares and reads
		accept round.Reply // as round.ClassifyAccept has it
	}{
		{status.Error(codes.FailedPrecondition, "not admitted"), round.Nack, round.Lost},
		{status.Error(codes.InvalidArgument, "bad"), round.Nack, round.Nack},
		{status.Error(codes.Unauthenticated, "token"), round.Nack, round.Lost},
		{status.Error(codes.PermissionDenied, "role"), round.Nack, round.Lost},
		{status.Error(codes.Unavailable, "down"), round.Lost, round.Lost},
		{status.Error(codes.DeadlineExceeded, "slow"), round.Lost, round.Lost},
		{status.Error(codes.Internal, "?"), round.Lost, round.Lost},
		{status.Error(codes.ResourceExhausted, "too big"), round.Lost, round.Lost},
		{errors.New("transport"), round.Lost, round.Lost},
		{tooFarAheadErr(t), round.Nack, round.Lost},
	} {
		for _, m := range []method{methodPrepare, methodRead, methodAccept} {
			r := (&batcher{method: m}).failure(tc.err)
			got, want := r.reply, tc.want
			if m == methodAccept {
				got, want = round.ClassifyAccept(register.Ballot{Counter: 1, Proposer: 1}, r.answer), tc.accept
				if r.refused != (status.Code(tc.err) == codes.FailedPrecondition) {
					t.Errorf("accept: failure(%v).refused = %v", tc.err, r.refused)
				}
			}
			if got != want || r.err != tc.err {
				t.Errorf("%v: failure(%v) = %v (%v), want %v", m, tc.err, got, r.err, want)
			}
		}
	}
	stale := errors.New("stale")
	for _, m := range []method{methodPrepare, methodRead} {
		if r := (&batcher{method: m}).refused(stale); r.reply != round.Nack || r.err != stale {
			t.Errorf("%v: a stale-epoch refusal is %+v, want Nack", m, r)
		}
	}
	if r := (&batcher{method: methodAccept}).refused(stale); !r.refused || r.answer != (round.AcceptAnswer{}) ||
		round.ClassifyAccept(register.Ballot{Counter: 1, Proposer: 1}, r.answer) != round.Lost {
		t.Errorf("accept: a stale-epoch refusal is %+v, want a refusal as a whole that counts as Lost", r)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Endpoints: []string{"x:1"}, MaxRetries: -1, CacheSize: -1}.withDefaults()
	if c.DialTimeout != DefaultDialTimeout || c.RequestTimeout != DefaultRequestTimeout ||
		c.MaxBatch != DefaultMaxBatch || c.MaxRetries != 0 || c.CacheSize != -1 {
		t.Errorf("withDefaults = %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Errorf("validate: %v", err)
	}
	err := Config{Endpoints: []string{""}, RequestTimeout: -1}.withDefaults().validate()
	if !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("validate = %v, want ErrInvalidArgument", err)
	}
}

// TestProposerID: a proposer ID is never 0 and new for every client; a
// configured ID shows in its top 16 bits and is never the whole ID.
func TestProposerID(t *testing.T) {
	for _, configured := range []uint64{0, 1, 42, 0xffff, 1 << 16, 0xdead_0000_0000_beef} {
		seen := map[uint64]bool{}
		for range 100 {
			id, err := proposerID(configured)
			if err != nil {
				t.Fatal(err)
			}
			if id == 0 || seen[id] {
				t.Fatalf("proposerID(%x) = %x: zero or repeated", configured, id)
			}
			seen[id] = true
			if configured != 0 && id>>48 != configured&0xffff {
				t.Fatalf("proposerID(%x) = %x: top 16 bits are not the configured ID's low 16 bits", configured, id)
			}
		}
	}
}

// tooFarAheadErr is an acceptor's refusal of a ballot far ahead of its
// clock, as acceptor.statusErr builds it.
func tooFarAheadErr(t *testing.T) error {
	st, err := status.New(codes.InvalidArgument, "ballot too far ahead").
		WithDetails(&errdetails.ErrorInfo{Reason: register.TooFarAheadReason, Domain: register.ErrorDomain})
	if err != nil {
		t.Fatal(err)
	}
	return st.Err()
}
