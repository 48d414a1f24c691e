package keyproc_test

import (
	"testing"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// BenchmarkMachine is the machine's own cost of one change on the 1RTT
// path: Submit, the change run, three accept replies, the answer.
func BenchmarkMachine(b *testing.B) {
	ms := []membership.Member{{ID: "a1", Incarnation: 1}, {ID: "a2", Incarnation: 2}, {ID: "a3", Incarnation: 3}}
	env := &keyproc.Shared{Clock: round.NewClock(1), Cache: round.NewCache(16), Rand: func() float64 { return 0.5 }}
	m := keyproc.New("k", keyproc.Config{MaxRetries: 2, RequestTimeout: 100, OneRTT: true}, env, membership.Stable(1, ms...))
	data := []byte("x")
	put := func(cur register.Value) (register.Value, error) { return cur.Put(data), nil }
	b.ReportAllocs()
	for b.Loop() {
		o := &keyproc.Op{Change: put}
		m.Submit(0, o)
		rd := m.Ready()
		if rd.Apply == nil { // the first change prepares
			for _, t := range rd.Send.To {
				m.OnPrepare(0, keyproc.PrepareReply{Attempt: rd.Send.Attempt, Incarnation: t.Incarnation, Reply: round.Ack})
			}
			rd = m.Ready()
		}
		m.OnApplied(0, rd.Apply.Run())
		rd = m.Ready()
		for _, t := range rd.Send.To {
			m.OnAccept(0, keyproc.AcceptReply{Attempt: rd.Send.Attempt, Incarnation: t.Incarnation, Answer: round.AcceptAnswer{OK: true}})
		}
		if rd = m.Ready(); len(rd.Answers) != 1 {
			b.Fatalf("no answer: %+v", rd)
		}
	}
}
