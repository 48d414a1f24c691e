package keyproc_test

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// TestMachine runs the scripts in testdata: one machine for key "k" of a
// proposer with ID 1 (ballots 1.1, 2.1, …), the members a1, a2, … with
// incarnations 1, 2, …, and a jitter of 0.5. Regenerate the expected
// output with -rewrite.
//
// Commands (t=N sets the clock to N first; every command prints what the
// machine asks for, and runs the changes it asks to apply unless it has
// the argument hold, when run does it later):
//
//	init [members=3] [retries=2] [conflicts=0] [1rtt] [timeout=100] [base=10] [limit=80]
//	submit name=N (put=DATA | cas=(FROM,TO) | delete | get | touch | resolve=N)
//	prepare   with lines "MEMBER ok [BALLOT VALUE]", "MEMBER nack BALLOT", "MEMBER lost"
//	accept    with lines "MEMBER ok", "MEMBER lost", "MEMBER stale",
//	          "MEMBER invalid", "MEMBER conflict ACCEPTED [PROMISED]"
//	tick t=N
//	config epoch=N [members=(a1,a2,…)]
//	abandon name=N
//	run
//	close
//	cache
//
// A ballot is COUNTER.PROPOSER (5.2), a value vVERSION:DATA, vVERSION:-
// for a tombstone, or v0 for the empty register, optionally followed by
// its lineage @BALLOT/VERSION,BALLOT/VERSION… (newest first).
func TestMachine(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			return h.run(t, d)
		})
	})
}

type harness struct {
	m       *keyproc.Machine
	env     *keyproc.Shared
	members map[string]membership.Member // every member ever, by ID
	now     time.Duration
	ops     map[string]*keyproc.Op
	answers map[string]keyproc.Answer
	held    *keyproc.Apply // changes not run yet (hold)
}

var errCAS = errors.New("cas mismatch")

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	if d.HasArg("t") {
		var n int
		d.ScanArgs(t, "t", &n)
		h.now = time.Duration(n)
	}
	if d.Cmd != "init" && h.m == nil {
		d.Fatalf(t, "init first")
	}
	var b strings.Builder
	switch d.Cmd {
	case "init":
		h.init(t, d)
	case "submit":
		h.submit(t, d)
	case "prepare":
		id, _, _ := h.m.Awaiting()
		for _, f := range h.lines(t, d) {
			r := keyproc.PrepareReply{Attempt: id, Incarnation: h.inc(t, d, f[0])}
			switch f[1] {
			case "ok":
				r.Reply = round.Ack
				if len(f) == 4 {
					r.Accepted, r.Value = ballot(t, d, f[2]), value(t, d, f[3])
				}
			case "nack":
				r.Reply, r.Conflict = round.Nack, ballot(t, d, f[2])
			case "lost":
				r.Reply, r.Err = round.Lost, errors.New("timeout")
			default:
				d.Fatalf(t, "prepare reply %q", f[1])
			}
			h.m.OnPrepare(h.now, r)
		}
	case "accept":
		id, _, _ := h.m.Awaiting()
		for _, f := range h.lines(t, d) {
			r := keyproc.AcceptReply{Attempt: id, Incarnation: h.inc(t, d, f[0])}
			switch f[1] {
			case "ok":
				r.Answer.OK = true
			case "lost":
				r.Err = errors.New("timeout")
			case "conflict": // the acceptor's accepted ballot, and its promise if higher
				r.Answer.Conflict, r.Answer.Accepted = true, ballot(t, d, f[2])
				r.Conflict = r.Answer.Accepted
				if len(f) > 3 {
					r.Conflict = ballot(t, d, f[3])
				}
			case "stale":
				r.Refused, r.Err = true, errors.New("stale configuration epoch")
			case "invalid":
				r.Answer.Invalid, r.Err = true, errors.New("invalid argument")
			default:
				d.Fatalf(t, "accept reply %q", f[1])
			}
			h.m.OnAccept(h.now, r)
		}
	case "tick":
		h.m.Tick(h.now)
	case "config":
		var epoch uint64
		d.ScanArgs(t, "epoch", &epoch)
		var ms []membership.Member
		if arg, ok := d.Arg("members"); ok {
			for _, id := range arg.Vals {
				ms = append(ms, h.member(id))
			}
		} else {
			ms = h.cur().Members
		}
		h.m.SetConfig(h.now, membership.Stable(epoch, ms...))
	case "abandon":
		var name string
		d.ScanArgs(t, "name", &name)
		a, ok := h.m.Abandon(h.ops[name], context("caller left"))
		if !ok {
			fmt.Fprintf(&b, "%s: already answered\n", name)
		} else {
			h.answers[name] = a
			fmt.Fprintf(&b, "left: %s\n", h.describe(a))
		}
	case "close":
		h.m.Close(h.now, errors.New("closed"))
	case "run":
		if h.held == nil {
			d.Fatalf(t, "no changes held")
		}
		ap := h.held
		h.held = nil
		h.m.OnApplied(h.now, ap.Run())
	case "cache":
		e, ok := h.env.Cache.Take("k")
		if !ok {
			return "no promise cached\n"
		}
		h.env.Cache.Put("k", e)
		return fmt.Sprintf("epoch %d ballot %v value %v\n", e.Epoch, e.Ballot, e.Value)
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	h.ready(&b, d.HasArg("hold"))
	if b.Len() == 0 {
		return "ok\n"
	}
	return b.String()
}

// ready prints what the machine asks for, running any changes it asks to
// apply (unless hold: then run does it later), and when it wants to be
// woken.
func (h *harness) ready(b *strings.Builder, hold bool) {
	for {
		rd := h.m.Ready()
		for _, r := range rd.Rounds {
			fast := ""
			if r.Fast {
				fast = " 1rtt"
			}
			fmt.Fprintf(b, "attempt %v%s ended %v: %d changes, settle %v, %v\n", r.Ballot, fast, r.Outcome, r.Changes, r.Settle, int64(r.Duration))
		}
		for _, a := range rd.Answers {
			h.answers[h.name(a.Op)] = a
			fmt.Fprintf(b, "answer %s\n", h.describe(a))
		}
		if m := rd.Send; len(m.To) > 0 {
			var to []string
			for _, t := range m.To {
				to = append(to, t.ID)
			}
			fmt.Fprintf(b, "send %v #%d epoch %d ballot %v", m.Kind, m.Attempt, m.Epoch, m.Ballot)
			if m.Kind == keyproc.Accept {
				fmt.Fprintf(b, " value %s", fmtValue(m.Value))
				if !m.Next.IsZero() {
					fmt.Fprintf(b, " next %v", m.Next)
				}
				if len(rd.Proposal.Ops) > 0 {
					fmt.Fprintf(b, " for %s", h.names(rd.Proposal.Ops))
				}
			}
			fmt.Fprintf(b, " to %s\n", strings.Join(to, " "))
		}
		if rd.Rediscover {
			fmt.Fprintf(b, "rediscover\n")
		}
		if rd.Apply == nil {
			break
		}
		fmt.Fprintf(b, "apply #%d %s to %v\n", rd.Apply.Attempt, h.names(rd.Apply.Ops), rd.Apply.Cur)
		if hold {
			h.held = rd.Apply
			break
		}
		h.m.OnApplied(h.now, rd.Apply.Run())
	}
	if at, ok := h.m.Wake(); ok {
		fmt.Fprintf(b, "wake at %d\n", int64(at))
	}
}

func (h *harness) describe(a keyproc.Answer) string {
	s := h.name(a.Op) + ": " + a.Outcome.String()
	switch a.Outcome {
	case round.Success:
		s += " " + a.Value.String()
		if a.Op.Resolve != nil {
			s += " " + a.Resolution.String()
		}
		if a.Err != nil {
			s += " (" + a.Err.Error() + ")"
		}
	case round.Failed:
		if a.NoQuorum {
			s += fmt.Sprintf(" no quorum after %d attempts", a.Attempts)
		}
		if a.Contention {
			s += fmt.Sprintf(" contention after %d attempts", a.Attempts)
		}
		if a.Err != nil {
			s += ": " + a.Err.Error()
		}
	case round.Unknown:
		var ps []string
		for _, p := range a.Pending {
			ps = append(ps, fmt.Sprintf("%v %v", p.Ballot, p.Value))
		}
		s += fmt.Sprintf(" pending [%s]", strings.Join(ps, ", "))
		if a.Sealed {
			s += " sealed"
		}
		if a.HasIntended {
			s += " intended " + a.Intended.String()
		}
		s += ": " + a.Err.Error()
	}
	return s
}

func (h *harness) init(t *testing.T, d *datadriven.TestData) {
	n, retries, timeout, base, limit, conflicts := 3, 2, 100, 10, 80, 0
	d.MaybeScanArgs(t, "members", &n)
	d.MaybeScanArgs(t, "retries", &retries)
	d.MaybeScanArgs(t, "timeout", &timeout)
	d.MaybeScanArgs(t, "base", &base)
	d.MaybeScanArgs(t, "limit", &limit)
	d.MaybeScanArgs(t, "conflicts", &conflicts)
	h.members = map[string]membership.Member{}
	var ms []membership.Member
	for i := 1; i <= n; i++ {
		ms = append(ms, h.member(fmt.Sprintf("a%d", i)))
	}
	h.env = &keyproc.Shared{Clock: round.NewClock(1), Cache: round.NewCache(16), Rand: func() float64 { return 0.5 }}
	cfg := keyproc.Config{
		MaxRetries:      retries,
		MaxConflicts:    conflicts,
		RequestTimeout:  time.Duration(timeout),
		BackoffBase:     time.Duration(base),
		BackoffMax:      time.Duration(limit),
		RediscoverAfter: 2,
		OneRTT:          d.HasArg("1rtt"),
	}
	h.m = keyproc.New("k", cfg, h.env, membership.Stable(1, ms...))
	h.now = 0
	h.ops = map[string]*keyproc.Op{}
	h.answers = map[string]keyproc.Answer{}
}

func (h *harness) member(id string) membership.Member {
	m, ok := h.members[id]
	if !ok {
		inc, _ := strconv.Atoi(strings.TrimPrefix(id, "a"))
		m = membership.Member{ID: id, Addr: id, Incarnation: uint64(inc)}
		h.members[id] = m
	}
	return m
}

// cur is the machine's newest configuration, as the harness last set it.
func (h *harness) cur() membership.Config {
	var ms []membership.Member
	for _, m := range h.members {
		ms = append(ms, m)
	}
	slices.SortFunc(ms, func(a, b membership.Member) int { return strings.Compare(a.ID, b.ID) })
	return membership.Stable(h.m.Epoch(), ms...)
}

func (h *harness) submit(t *testing.T, d *datadriven.TestData) {
	var name string
	d.ScanArgs(t, "name", &name)
	o := &keyproc.Op{Ref: name}
	switch {
	case d.HasArg("put"):
		var data string
		d.ScanArgs(t, "put", &data)
		o.Change = func(cur register.Value) (register.Value, error) { return cur.Put([]byte(data)), nil }
	case d.HasArg("cas"):
		arg, _ := d.Arg("cas")
		from, to := arg.TwoVals(t)
		o.Change = func(cur register.Value) (register.Value, error) {
			if got := string(cur.Data); !cur.Exists() && from != "" || cur.Exists() && got != from {
				return cur, errCAS
			}
			return cur.Put([]byte(to)), nil
		}
	case d.HasArg("delete"):
		o.Change = func(cur register.Value) (register.Value, error) { return cur.Delete(), nil }
	case d.HasArg("get"):
		o.Change, o.Identity = round.Identity, true
	case d.HasArg("touch"):
		o.Change, o.Identity, o.Fresh, o.Above = round.Identity, true, true, true
	case d.HasArg("resolve"):
		var of string
		d.ScanArgs(t, "resolve", &of)
		o.Resolve, o.Identity = h.answers[of].Pending, true
		if o.Resolve == nil {
			d.Fatalf(t, "%s has no pending proposals", of)
		}
	default:
		d.Fatalf(t, "submit what?")
	}
	h.ops[name] = o
	h.m.Submit(h.now, o)
}

func (h *harness) lines(t *testing.T, d *datadriven.TestData) [][]string {
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		if f := strings.Fields(l); len(f) >= 2 {
			out = append(out, f)
		} else if len(f) > 0 {
			d.Fatalf(t, "reply line %q", l)
		}
	}
	return out
}

func (h *harness) inc(t *testing.T, d *datadriven.TestData, id string) uint64 {
	m, ok := h.members[id]
	if !ok {
		d.Fatalf(t, "no member %s", id)
	}
	return m.Incarnation
}

func (h *harness) name(o *keyproc.Op) string { return o.Ref.(string) }

func (h *harness) names(ops []*keyproc.Op) string {
	var s []string
	for _, o := range ops {
		s = append(s, h.name(o))
	}
	return strings.Join(s, ",")
}

func ballot(t *testing.T, d *datadriven.TestData, s string) register.Ballot {
	c, p, ok := strings.Cut(s, ".")
	counter, err1 := strconv.ParseUint(c, 10, 64)
	proposer, err2 := strconv.ParseUint(p, 16, 64)
	if !ok || err1 != nil || err2 != nil {
		d.Fatalf(t, "ballot %q", s)
	}
	return register.Ballot{Counter: counter, Proposer: proposer}
}

// value parses vVERSION:DATA, optionally followed by @BALLOT/VERSION,…, the
// value's lineage, newest first.
func value(t *testing.T, d *datadriven.TestData, s string) register.Value {
	s, lin, _ := strings.Cut(s, "@")
	v := plainValue(t, d, s)
	if lin != "" {
		for _, l := range strings.Split(lin, ",") {
			b, ver, _ := strings.Cut(l, "/")
			n, err := strconv.ParseUint(ver, 10, 64)
			if err != nil {
				d.Fatalf(t, "lineage %q", lin)
			}
			v.Lineage = append(v.Lineage, register.Link{Ballot: ballot(t, d, b), Version: n})
		}
		if err := register.CheckLineage(v); err != nil {
			d.Fatalf(t, "value %q: %v", s, err)
		}
	}
	return v
}

// fmtValue prints a value with its lineage in value's syntax.
func fmtValue(v register.Value) string {
	s := v.String()
	for i, l := range v.Lineage {
		sep := ","
		if i == 0 {
			sep = "@"
		}
		s += fmt.Sprintf("%s%v/%d", sep, l.Ballot, l.Version)
	}
	return s
}

func plainValue(t *testing.T, d *datadriven.TestData, s string) register.Value {
	ver, data, _ := strings.Cut(strings.TrimPrefix(s, "v"), ":")
	n, err := strconv.ParseUint(ver, 10, 64)
	if err != nil {
		d.Fatalf(t, "value %q", s)
	}
	switch {
	case n == 0:
		return register.Value{}
	case data == "-":
		return register.Value{Version: n, Tombstone: true}
	}
	return register.Value{Version: n, Data: []byte(data)}
}

// context is an error standing for a caller's context error.
type context string

func (c context) Error() string { return string(c) }
