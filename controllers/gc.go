package controllers

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// Tombstone collection (docs/design.md §10, "The operator's passes").
//
// A pass is the library's GC procedure (membership/gc through
// Acceptors.CollectTombstones) run by the reconciler in one reconcile, so no
// membership step of the same cluster can run beside it; its steps are
// recorded in status.tombstoneGC.pass before they are taken, and while a
// pass is recorded Decide holds the membership machine (no change starts,
// no rolling update). PlanGC decides, purely, whether a pass runs now.
//
// Restarts. A pass interrupted at step Tombstones or Collect is started
// again from the listing: writing a tombstone to every member again is an
// identity change, and a collect removes a record only when it is still the
// tombstone the installed floors cover. A pass interrupted at InstallFloor
// has its floor configuration in status.configuration already (the intent
// is recorded first, as for every configuration), and acceptors may have
// it: that configuration is installed and fenced before anything else, by
// the same Install the transitions use; the pass then starts again, and at
// worst its floors cover an epoch more than they needed.

// GC defaults, the CRD's (spec.tombstoneGC).
const (
	DefaultGCRetention = 24 * time.Hour
	DefaultGCInterval  = time.Hour
	DefaultGCBatch     = 1000
)

// GC condition reasons (ConditionTombstoneGC) and event reasons.
const (
	ReasonGCCompleted = "GCCompleted"
	ReasonGCFailed    = "GCFailed"
	ReasonGCSuspended = "GCSuspended"
	ReasonGCWaiting   = "GCWaiting"
	ReasonGCRunning   = "GCRunning"

	EventGCPassCompleted = "TombstoneGCCompleted"
	EventGCPassFailed    = "TombstoneGCFailed"
	EventGCFloorResumed  = "TombstoneGCFloorResumed"
)

// GCSettings are spec.tombstoneGC with the defaults filled in.
type GCSettings struct {
	Retention, Interval time.Duration
	Batch               int
	// KeysPerSecond paces a pass (0: no pacing).
	KeysPerSecond int
	Suspend       bool
}

// GCSettingsOf reads c's spec.tombstoneGC; zero fields (an object the API
// server did not default) get the CRD's defaults.
func GCSettingsOf(c *kshakav1alpha1.KshakaCluster) GCSettings {
	g := c.Spec.TombstoneGC
	s := GCSettings{Retention: DefaultGCRetention, Interval: DefaultGCInterval, Batch: DefaultGCBatch, Suspend: g.Suspend,
		KeysPerSecond: int(max(g.KeysPerSecond, 0))}
	if g.Retention != nil && g.Retention.Duration > 0 {
		s.Retention = g.Retention.Duration
	}
	if g.Interval != nil && g.Interval.Duration > 0 {
		s.Interval = g.Interval.Duration
	}
	if g.BatchSize > 0 {
		s.Batch = int(g.BatchSize)
	}
	return s
}

// GCDo is what PlanGC asks of the reconciler.
type GCDo int

const (
	// GCNothing: no pass now.
	GCNothing GCDo = iota
	// GCFinishFloor: a pass was interrupted while installing its floor
	// configuration (status.configuration): install it and wait for its
	// fence, then start the pass again.
	GCFinishFloor
	// GCRun: run a pass.
	GCRun
	// GCAbandon: a pass was interrupted between steps that need nothing
	// finished, and the cluster is not stable any more: forget it, so the
	// membership machine is not held.
	GCAbandon
)

// GCPlan is PlanGC's answer.
type GCPlan struct {
	Do GCDo
	// Condition is the TombstoneGC condition to record when no pass runs
	// (a pass records its own outcome).
	Condition metav1.Condition
	// Due is when the next pass is due (zero: now, or never while
	// suspended); the reconciler looks again no later than that.
	Due time.Time
}

// PlanGC decides whether a tombstone collection pass runs after this
// reconcile's plan p (whose status is recorded) at time now. It is pure.
// A pass runs only when the cluster is stable: not paused, no membership
// change and no action, no restore in progress, the spec valid, no volume
// resize under way, every member of a stable configuration serving (quorum
// Healthy); and when it
// is due (spec.tombstoneGC.interval after the last pass started) and not
// suspended. An interrupted floor installation is finished whenever the
// cluster is not paused: it holds the membership machine until it is.
func PlanGC(c *kshakav1alpha1.KshakaCluster, p Plan, now time.Time) GCPlan {
	s := GCSettingsOf(c)
	st := &p.Status
	g := st.TombstoneGC
	var pass *kshakav1alpha1.TombstoneGCPass
	if g != nil {
		pass = g.Pass
	}
	cond := func(status metav1.ConditionStatus, reason, format string, args ...any) metav1.Condition {
		return metav1.Condition{Type: kshakav1alpha1.ConditionTombstoneGC, Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
	}
	last := lastGCCondition(st)
	if c.Spec.Paused {
		return GCPlan{Condition: keepOr(last, cond(metav1.ConditionFalse, ReasonGCWaiting, "spec.paused is set: no pass runs"))}
	}
	if pass != nil && pass.Step == kshakav1alpha1.GCStepInstallFloor {
		return GCPlan{Do: GCFinishFloor, Condition: cond(metav1.ConditionFalse, ReasonGCRunning,
			"finishing the installation of floor epoch %d of an interrupted pass", pass.FloorEpoch)}
	}
	why := gcUnstable(c, p)
	switch {
	case why != "" && pass != nil:
		return GCPlan{Do: GCAbandon, Condition: cond(metav1.ConditionFalse, ReasonGCWaiting, "an interrupted pass was abandoned: %s", why)}
	case why != "":
		return GCPlan{Condition: keepOr(last, cond(metav1.ConditionFalse, ReasonGCWaiting, "waiting for a stable cluster: %s", why))}
	case pass != nil:
		// Interrupted at a step that needs nothing finished: start again.
		return GCPlan{Do: GCRun}
	case s.Suspend:
		return GCPlan{Condition: cond(metav1.ConditionFalse, ReasonGCSuspended, "spec.tombstoneGC.suspend is set: no pass runs")}
	}
	if due, ok := gcDue(g, s.Interval); ok && now.Before(due) {
		return GCPlan{Condition: keepOr(last, cond(metav1.ConditionFalse, ReasonGCWaiting, "the next pass is due at %s", due.UTC().Format(time.RFC3339))), Due: due}
	}
	return GCPlan{Do: GCRun}
}

// gcDue is when the next pass is due: interval after the last one
// started, or sooner: a minute after one cut short by its timeout ended,
// and after failures a minute after the first failure ended, doubling with
// each further failure, never later than interval after the start. ok is false when no pass ran yet (due now).
func gcDue(g *kshakav1alpha1.TombstoneGCStatus, interval time.Duration) (time.Time, bool) {
	if g == nil || g.LastPassStart == nil {
		return time.Time{}, false
	}
	due := g.LastPassStart.Add(interval)
	if g.CutShort && g.LastPassEnd != nil {
		due = minTime(due, g.LastPassEnd.Add(time.Minute))
	}
	if n := g.ConsecutiveFailures; n > 0 && g.LastPassEnd != nil {
		backoff := time.Minute << min(n-1, 10)
		due = minTime(due, g.LastPassEnd.Add(backoff))
	}
	return due, true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// lastGCCondition is the recorded TombstoneGC condition, if any.
func lastGCCondition(st *kshakav1alpha1.KshakaClusterStatus) *metav1.Condition {
	return meta.FindStatusCondition(st.Conditions, kshakav1alpha1.ConditionTombstoneGC)
}

// keepOr keeps the outcome of the last pass (completed or failed) when
// there is one, else returns def.
func keepOr(last *metav1.Condition, def metav1.Condition) metav1.Condition {
	if last != nil && (last.Reason == ReasonGCCompleted || last.Reason == ReasonGCFailed) {
		return *last
	}
	return def
}

// gcUnstable says why p's cluster is not stable enough for a pass; "" when
// it is.
func gcUnstable(c *kshakav1alpha1.KshakaCluster, p Plan) string {
	st := &p.Status
	cfg, ok := ConfigFromStatus(st.Configuration)
	switch {
	case !ok:
		return "no configuration is installed yet"
	case st.Transition != nil:
		return fmt.Sprintf("a membership change is in progress (%s at step %s)", st.Transition.Kind, st.Transition.Step)
	case p.Action.Kind != ActionNone:
		return fmt.Sprintf("the operator is taking a step (%s)", p.Action.Kind)
	case !cfg.IsStable():
		return fmt.Sprintf("configuration epoch %d is not a stable one", cfg.Epoch)
	case Restoring(c):
		return "spec.bootstrap.fromBackup is being restored"
	case p.SpecError != "":
		return "the spec cannot be applied: " + p.SpecError
	case p.Volumes.InProgress():
		// The same reconcile may recreate the StatefulSet; a pass would
		// keep a status from before it recorded meanwhile.
		return "volume claims are being resized"
	case st.Quorum != kshakav1alpha1.QuorumHealthy:
		return fmt.Sprintf("not every member is serving (quorum %s)", st.Quorum)
	}
	for _, m := range st.Members {
		inCfg := false
		for _, cm := range cfg.Members {
			inCfg = inCfg || cm.ID == m.PodName
		}
		if inCfg && m.AcknowledgedEpoch < int64(cfg.Epoch) {
			return fmt.Sprintf("%s has acknowledged epoch %d, not %d", m.PodName, m.AcknowledgedEpoch, cfg.Epoch)
		}
	}
	return ""
}

// gcHolds reports whether a recorded pass holds the membership machine.
func gcHolds(st *kshakav1alpha1.KshakaClusterStatus) bool {
	return st.TombstoneGC != nil && st.TombstoneGC.Pass != nil
}
