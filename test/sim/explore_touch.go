package sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/register"
)

// The explorer's operator touches a key the way the simulated operator and
// proposer.Client.Rescan do: proposer.Client.Touch's op (keyproc.TouchOp) on the
// proposer library's keyproc.Machine, so the decisions of the touch —
// propose the value the prepare quorum showed, not below a higher ballot it
// showed (Outranked), what an accept's replies mean — are the shipping
// code's. Its phases are atomic: a prepare on a prepare quorum, an accept
// on an accept quorum, each one explorer step. The members of the quorum
// answer in slot order; as in the library, replies after the machine ended
// the phase are not looked at, so their ballots do not move the operator's
// clock. A prepare on exactly a quorum that succeeds saw no refusal, so the
// explorer never reaches the outranked case (a refusal beside a prepare
// quorum); the simulation's operator does (SurvivingBallot).
//
// A state holds bytes only, so the machine is rebuilt for each step from
// the attempt: its ballot and the prepare replies it logged (xAttempt.Log,
// sorted, as the asynchronous proposers' rounds are replayed). Each attempt
// is one machine that does not retry (MaxRetries 0, no backoff, no 1RTT
// promise): the explorer bounds the operator's attempts itself
// (ExploreOptions.OperatorTries, retry), and the library's retry would be
// the same thing, a new attempt with a new ballot from the same clock after
// the conflicts were observed.

// touchConfig is the policy of the explorer's touch machine. Time is 0
// while a phase runs and touchDeadline once its missing replies are given
// up.
var touchConfig = keyproc.Config{RequestTimeout: touchDeadline}

const touchDeadline = time.Duration(1)

// touchEnv is a touch machine's keyproc.Env: the one ballot the attempt
// reserved (startWrite), the operator's clock for the conflicts the
// machine observes, no 1RTT cache and no backoff.
type touchEnv struct {
	ballot register.Ballot
	used   bool
	clock  *uint8
}

func (v *touchEnv) NextBallot() (register.Ballot, error) {
	if v.used {
		panic("explore: a touch machine asked for a second ballot")
	}
	v.used = true
	return v.ballot, nil
}

func (v *touchEnv) Observe(b register.Ballot) error {
	*v.clock = max(*v.clock, uint8(b.Counter))
	return nil
}

func (*touchEnv) CacheTake(string) (round.CacheEntry, bool) { return round.CacheEntry{}, false }
func (*touchEnv) CachePut(string, round.CacheEntry)         {}
func (*touchEnv) RoundTime() time.Duration                  { return 0 }
func (*touchEnv) NoteRoundTime(time.Duration)               {}
func (*touchEnv) Jitter() float64                           { return 0 }

// touchMachine rebuilds the machine of the operator's attempt from its
// ballot and the prepare replies it logged, and returns what it asks for
// now: a prepare, an accept, or an answer.
func (e *explorer) touchMachine(s *xState) (*keyproc.Machine, keyproc.Ready) {
	att := &s.Op.A
	env := &touchEnv{ballot: att.B.reg(), clock: &s.Op.Clock}
	m := keyproc.New(fmt.Sprintf("k%d", att.Key), touchConfig, env, e.cfg(att.Cfg).Clone())
	op := keyproc.TouchOp()
	m.Submit(0, &op)
	rd := touchReady(m, 0)
	if att.NLog == 0 {
		return m, rd
	}
	attempt := rd.Send.Attempt
	for _, r := range att.Log[:att.NLog] {
		m.OnPrepare(0, prepareReply(attempt, r, e.value(r.Val, s)))
	}
	return m, touchReady(m, 0)
}

// touchReady collects what the machine asks for, running the identity
// change it asks to apply: the request to send and the answer.
func touchReady(m *keyproc.Machine, now time.Duration) keyproc.Ready {
	var out keyproc.Ready
	for {
		rd := m.Ready()
		if len(rd.Send.To) > 0 {
			out.Send = rd.Send
		}
		out.Answers = append(out.Answers, rd.Answers...)
		out.Rounds = append(out.Rounds, rd.Rounds...)
		if rd.Apply == nil {
			return out
		}
		m.OnApplied(now, rd.Apply.Run())
	}
}

func prepareReply(attempt uint64, r xReply, v register.Value) keyproc.PrepareReply {
	reply := round.Nack
	if r.Ok {
		reply = round.Ack
	}
	return keyproc.PrepareReply{Attempt: attempt, Incarnation: incarnation(int(r.From), r.Lost), Reply: reply,
		Accepted: r.Accepted.reg(), Value: v, Conflict: r.Conflict.reg()}
}

// touchPhase runs the phase of the operator's touch that its machine
// waits for on the members of sub at once; the other members never answer.
func (e *explorer) touchPhase(s *xState, sub []uint8) string {
	att := &s.Op.A
	epoch := e.epochOf(att.Cfg)
	var names []string
	for _, sl := range sub {
		names = append(names, slotNames[sl])
	}
	what := fmt.Sprintf("operator %%s of k%d at %v on {%s}", att.Key, att.B.reg(), strings.Join(names, ","))
	m, rd := e.touchMachine(s)
	send := rd.Send
	if send.Kind == keyproc.Prepare {
		for _, sl := range sub {
			r := e.apply(s, xMsg{Kind: xPrepare, From: xOperator, To: sl, Key: att.Key, Epoch: epoch, B: att.B})
			att.Log[att.NLog] = r
			att.NLog++
			m.OnPrepare(0, prepareReply(send.Attempt, r, e.value(r.Val, s)))
		}
		slices.SortFunc(att.Log[:att.NLog], func(x, y xReply) int { return cmpBytes(x.bytes(), y.bytes()) })
		rd = touchReady(m, 0)
		if rd.Send.Kind == keyproc.Accept {
			att.Val = valueID(rd.Send.Value)
			return fmt.Sprintf(what, "prepare") + fmt.Sprintf(": proposes v%d", att.Val)
		}
		if len(rd.Answers) == 0 {
			m.Tick(touchDeadline)
			rd = touchReady(m, touchDeadline)
		}
		e.touchDone(s, rd)
		return fmt.Sprintf(what, "prepare") + ": fails"
	}
	if send.Kind != keyproc.Accept || valueID(send.Value) != att.Val {
		panic(fmt.Sprintf("explore: the touch machine rebuilt for its accept asks for %v of v%d, not the accept of v%d",
			send.Kind, valueID(send.Value), att.Val))
	}
	for _, sl := range sub {
		a := s.Acc[sl]
		inc := incarnation(int(sl), a.Lost)
		refused := e.cfg(a.Cfg).Check(inc, uint64(epoch)) != nil
		accepted := a.Keys[att.Key].Accepted.reg()
		r := e.apply(s, xMsg{Kind: xAccept, From: xOperator, To: sl, Key: att.Key, Epoch: epoch, B: att.B, Val: att.Val})
		if r.Ok && epoch < s.Op.Fenced && s.LateAccept == "" {
			s.LateAccept = fmt.Sprintf("operator accept(k%d, v%d at %v, epoch %d) at %s: accepted after epoch %d was fenced",
				att.Key, att.Val, att.B.reg(), epoch, slotNames[sl], s.Op.Fenced)
		}
		ans := round.AcceptAnswer{OK: r.Ok}
		if !r.Ok && !refused {
			ans.Conflict, ans.Accepted = true, accepted
		}
		m.OnAccept(0, keyproc.AcceptReply{Attempt: send.Attempt, Incarnation: inc, Answer: ans, Refused: refused, Conflict: r.Conflict.reg()})
	}
	rd = touchReady(m, 0)
	if len(rd.Answers) == 0 {
		m.Tick(touchDeadline)
		rd = touchReady(m, touchDeadline)
	}
	outcome := e.touchDone(s, rd)
	return fmt.Sprintf(what, fmt.Sprintf("accept v%d", att.Val)) + ": " + outcome
}

// touchDone acts on the touch's answer: the key is rescanned, or after a
// definite failure the operator tries again (retry). It returns the
// attempt's outcome, for traces.
func (e *explorer) touchDone(s *xState, rd keyproc.Ready) string {
	if len(rd.Answers) != 1 {
		panic(fmt.Sprintf("explore: the touch machine gave %d answers", len(rd.Answers)))
	}
	att := &s.Op.A
	att.NLog, att.Log = 0, [xMaxLog]xReply{}
	if rd.Answers[0].Outcome == round.Success {
		e.rescanned(s)
	} else {
		e.retry(s, xOperator)
	}
	return rd.Rounds[len(rd.Rounds)-1].Outcome.String()
}
