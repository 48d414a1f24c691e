package change

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/kshaka-io/kshaka/membership"
)

// TestScenarios runs the scripts under testdata/: stories of the machine's
// transitions told against a small model of a cluster (slots with an
// acceptor each, a platform that starts, stops and wipes them). Regenerate
// the expected output with -rewrite.
//
// Commands:
//
//	cluster members=N [keys=K]  bootstrap N members a, b, … (K keys to rescan)
//	want size=N                 ask for N members
//	decide                      one decision: record its intent, print it
//	act                         carry out the last decision's action
//	step [n=N]                  decide then act, N times
//	run [limit=N]               decide and act (a rescan touches every key)
//	                            until the machine is idle or stuck
//	rescan n=N [norecord]       touch N keys of the rescan the last
//	                            decision asked for and record the progress
//	                            (norecord: the operator dies first)
//	lose slot=X                 X's disk is lost: a new, empty incarnation
//	down slot=X / up slot=X     X's acceptor stops / starts answering
//	snapshot slot=X             copy X's storage
//	restore slot=X              put the copy back (a rolled-back volume)
//	retire slot=X               a person asserts X's incarnation is gone
//	intent                      print the recorded intent
//	controls [majority-fence] [skip-rescan] [rescan-skip]
//	         [skip-below-accept-quorum] [ignore-rolled-back]
//	                            set the machine's negative controls
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{t: t}
		datadriven.RunTest(t, path, h.do)
	})
}

// disk is a slot's storage: an incarnation and the configuration installed.
type disk struct {
	inc uint64
	cfg *membership.Config
}

// place is one slot of the model.
type place struct {
	exists bool // the process exists
	down   bool // its acceptor does not answer
	disk   *disk
	copy   *disk
}

type harness struct {
	t       *testing.T
	m       Machine
	in      Intent
	slots   map[string]*place
	size    int
	keys    []string
	nextInc uint64
	last    Decision
	assert  []uint64
}

func slotName(i int) string { return string(rune('a' + i)) }

func (h *harness) do(t *testing.T, td *datadriven.TestData) string {
	switch td.Cmd {
	case "cluster":
		var n int
		td.ScanArgs(t, "members", &n)
		k := 3
		td.MaybeScanArgs(t, "keys", &k)
		h.slots = map[string]*place{}
		h.size = n
		for i := range k {
			h.keys = append(h.keys, fmt.Sprintf("k%d", i))
		}
		for i := range n {
			h.start(slotName(i))
		}
		h.runQuiet(50)
		return h.configLine()
	case "want":
		td.ScanArgs(t, "size", &h.size)
		return ""
	case "decide":
		h.decide()
		return h.describe(h.last)
	case "act":
		return h.act(false)
	case "step":
		n := 1
		td.MaybeScanArgs(t, "n", &n)
		var out []string
		for range n {
			h.decide()
			out = append(out, h.line(h.last))
			if s := h.act(true); s != "" {
				out = append(out, indent(s))
			}
		}
		return strings.Join(out, "\n")
	case "run":
		limit := 60
		td.MaybeScanArgs(t, "limit", &limit)
		return h.run(limit)
	case "rescan":
		var n int
		td.ScanArgs(t, "n", &n)
		return h.rescan(n, td.HasArg("norecord"))
	case "lose":
		p := h.slot(t, td)
		h.nextInc++
		p.disk = &disk{inc: 0x10 + h.nextInc}
		return fmt.Sprintf("%s comes back empty with incarnation %x", h.arg(t, td), p.disk.inc)
	case "down", "up":
		h.slot(t, td).down = td.Cmd == "down"
		return ""
	case "snapshot":
		p := h.slot(t, td)
		p.copy = cloneDisk(p.disk)
		return fmt.Sprintf("copied %s at epoch %d", h.arg(t, td), epochOf(p.copy.cfg))
	case "restore":
		p := h.slot(t, td)
		p.disk = cloneDisk(p.copy)
		return fmt.Sprintf("%s's storage is back at epoch %d", h.arg(t, td), epochOf(p.disk.cfg))
	case "retire":
		h.assert = append(h.assert, h.slot(t, td).disk.inc)
		return ""
	case "intent":
		return h.intentText()
	case "controls":
		h.m.Controls = Controls{
			MajorityFence:         td.HasArg("majority-fence"),
			SkipRescan:            td.HasArg("skip-rescan"),
			RescanSkip:            td.HasArg("rescan-skip"),
			SkipBelowAcceptQuorum: td.HasArg("skip-below-accept-quorum"),
			IgnoreRolledBack:      td.HasArg("ignore-rolled-back"),
		}
		return fmt.Sprintf("%+v", h.m.Controls)
	}
	t.Fatalf("unknown command %q", td.Cmd)
	return ""
}

func cloneDisk(d *disk) *disk {
	c := &disk{inc: d.inc}
	if d.cfg != nil {
		cc := d.cfg.Clone()
		c.cfg = &cc
	}
	return c
}

func epochOf(c *membership.Config) uint64 {
	if c == nil {
		return 0
	}
	return c.Epoch
}

func (h *harness) arg(t *testing.T, td *datadriven.TestData) string {
	var s string
	td.ScanArgs(t, "slot", &s)
	return s
}

func (h *harness) slot(t *testing.T, td *datadriven.TestData) *place {
	p := h.slots[h.arg(t, td)]
	if p == nil {
		t.Fatalf("no slot %s", h.arg(t, td))
	}
	return p
}

// start starts slot name's process with empty storage, as a StatefulSet
// does for a new ordinal.
func (h *harness) start(name string) {
	p := h.slots[name]
	if p == nil {
		p = &place{}
		h.slots[name] = p
	}
	p.exists = true
	if p.disk == nil {
		h.nextInc++
		p.disk = &disk{inc: h.nextInc}
	}
}

func (h *harness) observation() Observation {
	obs := Observation{Size: h.size, Seen: map[string]Slot{}, Asserted: h.assert}
	n := h.size
	for name := range h.slots {
		n = max(n, int(name[0]-'a')+1)
	}
	for i := range n + 1 {
		obs.Slots = append(obs.Slots, slotName(i))
	}
	for name, p := range h.slots {
		s := Slot{Exists: p.exists, Running: p.exists, HasStorage: p.disk != nil, Addr: name}
		switch {
		case !p.exists:
			s.Why = name + " does not exist"
		case p.down:
			s.Why = name + " is unreachable: connection refused"
		default:
			s.Reachable, s.Healthy = true, true
			s.Incarnation = p.disk.inc
			s.Epoch = epochOf(p.disk.cfg)
			if p.disk.cfg != nil {
				_, s.Admitted = p.disk.cfg.Member(p.disk.inc)
			}
		}
		obs.Seen[name] = s
	}
	return obs
}

func (h *harness) decide() {
	h.last = h.m.Next(h.in, h.observation())
	h.in = h.last.Intent
}

// act carries out the last decision's action; a rescan touches every key
// when all is set.
func (h *harness) act(all bool) string {
	a := h.last.Action
	switch a.Kind {
	case Install:
		var done []string
		for _, tg := range a.Targets {
			p := h.slots[tg.Slot]
			if p == nil || !p.exists || p.down || p.disk.inc != tg.Incarnation {
				return fmt.Sprintf("install epoch %d: %s failed", a.Config.Epoch, tg.Slot)
			}
			if epochOf(p.disk.cfg) < a.Config.Epoch {
				c := a.Config.Clone()
				p.disk.cfg = &c
			}
			done = append(done, tg.Slot)
		}
		return fmt.Sprintf("installed epoch %d on %s", a.Config.Epoch, strings.Join(done, ","))
	case Rescan:
		if all {
			return h.rescan(len(h.keys), false)
		}
		return ""
	case Start:
		h.start(a.Slot)
		return "started " + a.Slot
	case Recycle:
		p := h.slots[a.Slot]
		h.nextInc++
		p.disk = &disk{inc: 0x20 + h.nextInc}
		return fmt.Sprintf("recycled %s: incarnation %x", a.Slot, p.disk.inc)
	case Stop:
		h.slots[a.Slot].exists = false
		return "stopped " + a.Slot
	case DeleteStorage:
		h.slots[a.Slot].disk = nil
		return "deleted the storage of " + a.Slot
	}
	return ""
}

// rescan touches up to n keys after the cursor of the last decision's
// rescan and records the progress.
func (h *harness) rescan(n int, norecord bool) string {
	a := h.last.Action
	if a.Kind != Rescan {
		return "no rescan asked for"
	}
	var touched []string
	for _, k := range h.keys {
		if bytes.Compare([]byte(k), a.Cursor) > 0 && len(touched) < n {
			touched = append(touched, k)
		}
	}
	p := Progress{Keys: len(touched)}
	if len(touched) > 0 {
		p.Cursor = []byte(touched[len(touched)-1])
	}
	p.Done = len(touched) == 0 || touched[len(touched)-1] == h.keys[len(h.keys)-1]
	out := fmt.Sprintf("touched %s under epoch %d", strings.Join(touched, ","), a.Config.Epoch)
	if norecord {
		return out + "; the progress is not recorded"
	}
	in, events, err := h.m.Rescanned(h.in, p)
	if err != nil {
		return out + ": " + err.Error()
	}
	h.in = in
	for _, e := range events {
		out += "\n" + e.Reason + ": " + e.Message
	}
	return out
}

func (h *harness) runQuiet(limit int) {
	for range limit {
		h.decide()
		h.act(true)
		if h.last.Idle {
			return
		}
	}
	h.t.Fatalf("not idle after %d steps: %s", limit, h.describe(h.last))
}

// run decides and acts until the machine is idle, or a decision repeats
// without an action (stuck).
func (h *harness) run(limit int) string {
	var out []string
	prev := ""
	for range limit {
		h.decide()
		line := h.line(h.last)
		if line == prev && h.last.Action.Kind == None {
			out = append(out, "(no progress)")
			out = append(out, h.describe(h.last))
			return strings.Join(out, "\n")
		}
		prev = line
		if h.last.Idle {
			out = append(out, "idle: "+h.configLine())
			return strings.Join(out, "\n")
		}
		out = append(out, line)
		if s := h.act(true); s != "" {
			out = append(out, indent(s))
		}
	}
	out = append(out, fmt.Sprintf("(still busy after %d decisions)", limit))
	return strings.Join(out, "\n")
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }

func (h *harness) configLine() string {
	if h.in.Config == nil {
		return "no configuration"
	}
	return h.in.Config.String()
}

// line is a decision in one line: the step and the action.
func (h *harness) line(d Decision) string {
	step := "stable"
	if tr := d.Intent.Transition; tr != nil {
		who := ""
		if tr.Member.ID != "" {
			who = " " + tr.Member.ID
		}
		step = fmt.Sprintf("%s%s %s", tr.Kind, who, tr.Step)
	}
	var reasons []string
	for _, e := range d.Events {
		reasons = append(reasons, e.Reason)
	}
	s := step + ": " + actionText(d.Action)
	if len(reasons) > 0 {
		s += " [" + strings.Join(reasons, ", ") + "]"
	}
	if d.Blocked != "" {
		s += " blocked: " + d.Blocked
	}
	return s
}

func actionText(a Action) string {
	var slots []string
	for _, t := range a.Targets {
		slots = append(slots, t.Slot)
	}
	switch a.Kind {
	case Install:
		return fmt.Sprintf("install %s on %s", a.Config.String(), strings.Join(slots, ","))
	case Rescan:
		s := fmt.Sprintf("rescan under epoch %d after %q from %s", a.Config.Epoch, a.Cursor, strings.Join(slots, ","))
		if a.SkipAgreeing > 0 {
			s += fmt.Sprintf(" skipping keys agreeing on %d", a.SkipAgreeing)
		}
		return s
	case Start:
		return "start " + a.Slot
	case Recycle:
		return fmt.Sprintf("recycle %s (retired incarnation %x)", a.Slot, a.Incarnation)
	case Stop:
		return "stop " + a.Slot
	case DeleteStorage:
		return "delete the storage of " + a.Slot
	}
	return "none"
}

// describe is a decision in full.
func (h *harness) describe(d Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "intent: %s\n", h.intentLine(d.Intent))
	fmt.Fprintf(&b, "action: %s\n", actionText(d.Action))
	for _, e := range d.Events {
		w := ""
		if e.Warning {
			w = " (warning)"
		}
		fmt.Fprintf(&b, "event%s: %s: %s\n", w, e.Reason, e.Message)
	}
	if d.Fenced > 0 {
		fmt.Fprintf(&b, "fenced: epoch %d\n", d.Fenced)
	}
	for _, x := range []struct{ k, v string }{{"blocked", d.Blocked}, {"waiting", d.Waiting}, {"kept", d.Kept}} {
		if x.v != "" {
			fmt.Fprintf(&b, "%s: %s\n", x.k, x.v)
		}
	}
	for _, r := range d.RolledBack {
		fmt.Fprintf(&b, "rolled back: %s\n", r)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func (h *harness) intentLine(in Intent) string {
	s := "no configuration"
	if in.Config != nil {
		s = in.Config.String()
	}
	if tr := in.Transition; tr != nil {
		who := ""
		if tr.Member.ID != "" {
			who = " " + tr.Member.ID
		}
		s += fmt.Sprintf("; %s%s (%s) at %s", tr.Kind, who, tr.Reason, tr.Step)
		if tr.Step == StepRescan {
			s += fmt.Sprintf(", cursor %q, %d keys rescanned", tr.Cursor, tr.Rescanned)
		}
	}
	return s
}

func (h *harness) intentText() string {
	var b strings.Builder
	b.WriteString(h.intentLine(h.in))
	if len(h.in.Retired) > 0 {
		var r []string
		for _, inc := range h.in.Retired {
			r = append(r, fmt.Sprintf("%x", inc))
		}
		fmt.Fprintf(&b, "\nretired: %s", strings.Join(r, ","))
	}
	var slots []string
	for s := range h.in.Acks {
		slots = append(slots, s)
	}
	sort.Strings(slots)
	var acks []string
	for _, s := range slots {
		a := h.in.Acks[s]
		acks = append(acks, fmt.Sprintf("%s=%x@%d", s, a.Incarnation, a.Epoch))
	}
	if len(acks) > 0 {
		fmt.Fprintf(&b, "\nacknowledged: %s", strings.Join(acks, " "))
	}
	return b.String()
}
