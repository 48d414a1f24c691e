package change

import (
	"fmt"

	"github.com/kshaka-io/kshaka/membership"
)

// View answers questions about members from one observation and a set of
// retired incarnations. The zero View sees nothing.
type View struct {
	obs     Observation
	retired map[uint64]bool
}

// NewView returns the view of obs under in's retirements.
func NewView(in Intent, obs Observation) View {
	v := View{obs: obs, retired: map[uint64]bool{}}
	for _, inc := range in.Retired {
		v.retired[inc] = true
	}
	return v
}

// Retired reports whether inc is retired.
func (v View) Retired(inc uint64) bool { return v.retired[inc] }

// Seen returns what was observed at slot id.
func (v View) Seen(id string) (Slot, bool) {
	s, ok := v.obs.Seen[id]
	return s, ok
}

// acceptor returns the answer of the acceptor at m's slot when it answered.
func (v View) acceptor(m membership.Member) (Slot, bool) {
	s, ok := v.obs.Seen[m.ID]
	return s, ok && s.Reachable
}

// Acked reports whether m's acceptor, with m's incarnation, has
// acknowledged epoch e or later.
func (v View) Acked(m membership.Member, e uint64) bool {
	a, ok := v.acceptor(m)
	return ok && a.Incarnation == m.Incarnation && a.Epoch >= e
}

// Serving reports whether m's acceptor answers as an admitted, healthy
// member with m's incarnation, and that incarnation is not retired (a
// rolled-back volume keeps answering as the member it was).
func (v View) Serving(m membership.Member) bool {
	a, ok := v.acceptor(m)
	return ok && a.Incarnation == m.Incarnation && a.Admitted && a.Healthy && !v.retired[m.Incarnation]
}

// WhyNot explains why m is not serving (or has not acknowledged epoch e,
// when e > 0); "" when it is.
func (v View) WhyNot(m membership.Member, e uint64) string {
	if v.retired[m.Incarnation] {
		return fmt.Sprintf("%s is retired", m.ID)
	}
	a, ok := v.obs.Seen[m.ID]
	switch {
	case !ok || !a.Reachable:
		if a.Why != "" {
			return a.Why
		}
		return fmt.Sprintf("%s is unreachable", m.ID)
	case a.Incarnation != m.Incarnation:
		return fmt.Sprintf("%s reports incarnation %s, not the member's %s", m.ID, FormatIncarnation(a.Incarnation), FormatIncarnation(m.Incarnation))
	case !a.Healthy:
		return fmt.Sprintf("%s is unhealthy: %s", m.ID, a.Reason)
	case e > 0 && a.Epoch < e:
		return fmt.Sprintf("%s has acknowledged epoch %d, not %d", m.ID, a.Epoch, e)
	case !a.Admitted:
		return fmt.Sprintf("%s is not admitted: %s", m.ID, a.Reason)
	}
	return ""
}

// OthersServing is the gate before a change or a restart: every
// non-retired member of cfg other than except serves cfg's epoch. When one
// does not, it returns why.
func (v View) OthersServing(cfg membership.Config, except membership.Member) (bool, string) {
	for _, m := range cfg.Members {
		if m.Incarnation == except.Incarnation || v.retired[m.Incarnation] {
			continue
		}
		if !v.Serving(m) || !v.Acked(m, cfg.Epoch) {
			return false, v.WhyNot(m, cfg.Epoch)
		}
	}
	return true, ""
}

// FormatIncarnation renders an incarnation as status records it: 16
// lowercase hex digits ("" for 0).
func FormatIncarnation(inc uint64) string {
	if inc == 0 {
		return ""
	}
	return fmt.Sprintf("%016x", inc)
}
