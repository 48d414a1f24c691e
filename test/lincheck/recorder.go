package lincheck

import (
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Recorder collects a history from concurrent clients. Timestamps are
// nanoseconds on the monotonic clock since NewRecorder, strictly increasing
// across all calls and returns. It is safe for concurrent use.
type Recorder struct {
	start time.Time
	mu    struct {
		sync.Mutex
		last    int64
		ops     []porcupine.Operation
		pending map[int]porcupine.Operation // by sequence number
		seq     int
	}
}

// NewRecorder returns an empty recorder whose clock starts now.
func NewRecorder() *Recorder {
	r := &Recorder{start: time.Now()}
	r.mu.pending = map[int]porcupine.Operation{}
	return r
}

// stamp returns the next timestamp. r.mu must be held.
func (r *Recorder) stamp() int64 {
	t := time.Since(r.start).Nanoseconds()
	if t <= r.mu.last {
		t = r.mu.last + 1
	}
	r.mu.last = t
	return t
}

// Call records that client invoked in, and returns the function to call
// exactly once with what the client was told. An output with StatusUnknown
// is recorded as returning at +∞ (math.MaxInt64). Calls whose function was
// never called are reported by Operations as unknown.
func (r *Recorder) Call(client int, in Input) (done func(Output)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seq := r.mu.seq
	r.mu.seq++
	r.mu.pending[seq] = porcupine.Operation{ClientId: client, Input: in, Call: r.stamp()}
	var once sync.Once
	return func(out Output) {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			op := r.mu.pending[seq]
			delete(r.mu.pending, seq)
			op.Output = out
			op.Return = r.stamp()
			if out.Status == StatusUnknown {
				op.Return = math.MaxInt64
			}
			r.mu.ops = append(r.mu.ops, op)
		})
	}
}

// Operations returns a copy of the history so far. Calls still pending
// are included with StatusUnknown and Return +∞.
func (r *Recorder) Operations() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	ops := make([]porcupine.Operation, 0, len(r.mu.ops)+len(r.mu.pending))
	ops = append(ops, r.mu.ops...)
	for _, op := range r.mu.pending {
		op.Output = Output{Status: StatusUnknown}
		op.Return = math.MaxInt64
		ops = append(ops, op)
	}
	return ops
}
