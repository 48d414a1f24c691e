package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kshaka-io/kshaka/membership"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// GCPassOptions are one pass's parameters for Acceptors.CollectTombstones.
type GCPassOptions struct {
	// Retention: only tombstones whose accepted ballot is older than this
	// (by Now) are collected.
	Retention time.Duration
	// Batch is the most tombstones handled per floor epoch.
	Batch int
	// KeysPerSecond paces the pass: after each batch it waits until no
	// more than this many candidates per second were handled (0: none).
	KeysPerSecond int
	// Now is the pass's clock.
	Now func() time.Time
}

// GCPassResult counts what one pass did.
type GCPassResult struct {
	// Scanned: keys listed as candidates.
	Scanned int64
	// Collected: tombstones removed from every member.
	Collected int64
	// Skipped: candidates left for a later pass (not written to every
	// member, or kept by one).
	Skipped int64
	// Live: candidates written again since they were listed.
	Live int64
	// FloorEpochs: floor configurations installed.
	FloorEpochs int
}

// FloorInstaller installs next (the installed configuration with raised
// GC floors, at the next epoch) and returns once it is fenced.
type FloorInstaller func(ctx context.Context, next membership.Config) error

// gcNow is the clock tombstones' ages are measured on.
func (r *Reconciler) gcNow() time.Time {
	if r.GCNow != nil {
		return r.GCNow()
	}
	return r.now()
}

// gcPassTimeout bounds one pass (the reconciler's GCPassTimeout).
func (r *Reconciler) gcPassTimeout() time.Duration { return orDefault(r.GCPassTimeout, 2*time.Minute) }

// tombstoneGC carries out PlanGC's decision for c, whose status (plan.Status
// with gp's condition) was just recorded. It returns when the next pass is
// due, if sooner than the plan's own pace.
func (r *Reconciler) tombstoneGC(ctx context.Context, c *kshakav1alpha1.KshakaCluster, acc Acceptors, gp GCPlan) error {
	switch gp.Do {
	case GCFinishFloor:
		cfg, _ := ConfigFromStatus(c.Status.Configuration)
		if err := r.installFloor(ctx, c, acc, cfg); err != nil {
			return r.gcFailed(ctx, c, time.Time{}, GCPassResult{}, fmt.Errorf("while finishing floor epoch %d of an interrupted pass: %w", cfg.Epoch, err))
		}
		r.emit(c, []Event{{Type: corev1.EventTypeNormal, Reason: EventGCFloorResumed,
			Message: fmt.Sprintf("Floor epoch %d of an interrupted tombstone collection pass is fenced; starting the pass again", cfg.Epoch)}})
		return r.gcPass(ctx, c, acc)
	case GCRun:
		return r.gcPass(ctx, c, acc)
	}
	return nil
}

// gcPass runs one pass: record it, run the library's procedure with the
// floor installer, record the outcome.
func (r *Reconciler) gcPass(ctx context.Context, c *kshakav1alpha1.KshakaCluster, acc Acceptors) error {
	logger := log.FromContext(ctx)
	start := r.now()
	g := gcStatus(&c.Status)
	g.Pass = &kshakav1alpha1.TombstoneGCPass{Step: kshakav1alpha1.GCStepTombstones, StartedAt: metav1.NewTime(start)}
	g.LastPassStart = &g.Pass.StartedAt
	r.setCondition(c, &c.Status, metav1.Condition{Type: kshakav1alpha1.ConditionTombstoneGC, Status: metav1.ConditionFalse,
		Reason: ReasonGCRunning, Message: "a tombstone collection pass is running"})
	if err := r.Status().Update(ctx, c); err != nil {
		return fmt.Errorf("while recording the start of a tombstone collection pass: %w", err)
	}
	cfg, _ := ConfigFromStatus(c.Status.Configuration)
	s := GCSettingsOf(c)
	pctx, cancel := context.WithTimeout(ctx, r.gcPassTimeout())
	defer cancel()
	install := func(ctx context.Context, next membership.Config) error {
		return r.gcInstall(ctx, c, acc, next)
	}
	res, err := acc.CollectTombstones(pctx, cfg, GCPassOptions{Retention: s.Retention, Batch: s.Batch, KeysPerSecond: s.KeysPerSecond, Now: r.gcNow}, install)
	// A pass cut short by its timeout after collecting something is a
	// completed part of the work, not a failure: the next one goes on a
	// minute later (gcDue). One cut short while a floor epoch is being
	// installed fails, so that the epoch is finished first.
	cutShort := err != nil && pctx.Err() != nil && ctx.Err() == nil && res.Collected > 0 &&
		(c.Status.TombstoneGC.Pass == nil || c.Status.TombstoneGC.Pass.Step != kshakav1alpha1.GCStepInstallFloor)
	if err != nil && !cutShort {
		return r.gcFailed(ctx, c, start, res, err)
	}
	end := r.now()
	g = gcStatus(&c.Status)
	g.Pass = nil
	g.LastPassEnd = &metav1.Time{Time: end}
	g.KeysScanned, g.TombstonesCollected, g.Skipped = res.Scanned, res.Collected, res.Skipped
	g.TotalCollected += res.Collected
	g.LastError, g.ConsecutiveFailures, g.CutShort = "", 0, cutShort
	msg := fmt.Sprintf("the pass of %s collected %d tombstones (%d candidates listed, %d left for a later pass, %d floor epochs) in %s",
		start.UTC().Format(time.RFC3339), res.Collected, res.Scanned, res.Skipped, res.FloorEpochs, end.Sub(start).Round(time.Millisecond))
	if cutShort {
		msg += fmt.Sprintf("; cut short by the pass timeout (%s), the next pass goes on in a minute", r.gcPassTimeout())
	}
	r.setCondition(c, &c.Status, metav1.Condition{Type: kshakav1alpha1.ConditionTombstoneGC, Status: metav1.ConditionTrue,
		Reason: ReasonGCCompleted, Message: msg})
	gcMetrics.pass(c, "ok", res, end.Sub(start))
	if err := r.Status().Update(ctx, c); err != nil {
		// The records are gone; only the counts are lost.
		logger.Info("recording a completed tombstone collection pass failed", "error", err.Error())
		return fmt.Errorf("while recording a completed tombstone collection pass: %w", err)
	}
	clusterMetrics.recordTransition(c)
	if res.Collected > 0 || res.Skipped > 0 {
		r.emit(c, []Event{{Type: corev1.EventTypeNormal, Reason: EventGCPassCompleted, Message: "Tombstone collection: " + msg}})
	}
	return nil
}

// gcFailed records a failed pass (start zero: a floor installation that
// could not be finished) and returns err. A floor configuration being
// installed stays recorded (step InstallFloor), so the next reconcile
// finishes it; any other step is forgotten.
func (r *Reconciler) gcFailed(ctx context.Context, c *kshakav1alpha1.KshakaCluster, start time.Time, res GCPassResult, err error) error {
	g := gcStatus(&c.Status)
	if g.Pass != nil && g.Pass.Step != kshakav1alpha1.GCStepInstallFloor {
		g.Pass = nil
	}
	now := r.now()
	g.LastPassEnd = &metav1.Time{Time: now}
	g.KeysScanned, g.TombstonesCollected, g.Skipped = res.Scanned, res.Collected, res.Skipped
	g.TotalCollected += res.Collected
	g.LastError = err.Error()
	g.ConsecutiveFailures++
	g.CutShort = false
	r.setCondition(c, &c.Status, metav1.Condition{Type: kshakav1alpha1.ConditionTombstoneGC, Status: metav1.ConditionFalse,
		Reason: ReasonGCFailed, Message: fmt.Sprintf("the last pass failed (%d in a row): %s", g.ConsecutiveFailures, err)})
	var d time.Duration
	if !start.IsZero() {
		d = now.Sub(start)
	}
	gcMetrics.pass(c, "error", res, d)
	if uerr := r.Status().Update(ctx, c); uerr != nil {
		err = errors.Join(err, fmt.Errorf("while recording the failed pass: %w", uerr))
	} else {
		clusterMetrics.recordTransition(c)
	}
	r.emit(c, []Event{{Type: corev1.EventTypeWarning, Reason: EventGCPassFailed, Message: "Tombstone collection pass failed: " + err.Error()}})
	return err
}

// gcInstall is the pass's FloorInstaller: it checks that next is the
// installed configuration at the next epoch with floors raised, records it
// as status.configuration with the pass at step InstallFloor (the intent,
// before anything is installed), installs and fences it, and records the
// pass at step Collect.
func (r *Reconciler) gcInstall(ctx context.Context, c *kshakav1alpha1.KshakaCluster, acc Acceptors, next membership.Config) error {
	cur, ok := ConfigFromStatus(c.Status.Configuration)
	if !ok {
		return errors.New("no configuration is recorded")
	}
	if err := checkFloorConfig(cur, next); err != nil {
		return err
	}
	g := gcStatus(&c.Status)
	if g.Pass == nil {
		g.Pass = &kshakav1alpha1.TombstoneGCPass{StartedAt: metav1.NewTime(r.now())}
	}
	g.Pass.Step, g.Pass.FloorEpoch = kshakav1alpha1.GCStepInstallFloor, int64(next.Epoch)
	c.Status.Configuration = ConfigToStatus(next)
	if err := r.Status().Update(ctx, c); err != nil {
		return fmt.Errorf("while recording floor epoch %d: %w", next.Epoch, err)
	}
	clusterMetrics.recordTransition(c)
	if err := r.installFloor(ctx, c, acc, next); err != nil {
		return err
	}
	g = gcStatus(&c.Status)
	g.Pass.Step, g.Pass.FloorEpoch = kshakav1alpha1.GCStepCollect, 0
	if err := r.Status().Update(ctx, c); err != nil {
		return fmt.Errorf("while recording that floor epoch %d is fenced: %w", next.Epoch, err)
	}
	return nil
}

// checkFloorConfig checks that next is cur at the next epoch, with the
// same members and quorums and floors at least cur's: the only
// configuration a pass may install.
func checkFloorConfig(cur, next membership.Config) error {
	same := next.Epoch == cur.Epoch+1 && next.PrepareQuorum == cur.PrepareQuorum && next.AcceptQuorum == cur.AcceptQuorum &&
		slices.Equal(next.Members, cur.Members)
	if !same {
		return fmt.Errorf("refusing floor configuration %s: a pass may only install the installed configuration %s at the next epoch with raised floors", next, cur)
	}
	return membership.CheckFloors(cur, next)
}

// installFloor installs cfg (status.configuration) on every non-retired
// member with Install, the transitions' code path, and checks its fence:
// every one of them reports cfg's epoch or later with its incarnation.
func (r *Reconciler) installFloor(ctx context.Context, c *kshakav1alpha1.KshakaCluster, acc Acceptors, cfg membership.Config) error {
	retired := map[string]bool{}
	for _, s := range c.Status.RetiredIncarnations {
		retired[s] = true
	}
	var targets []Target
	for _, m := range cfg.Members {
		if retired[FormatIncarnation(m.Incarnation)] {
			continue
		}
		ord, _ := Ordinal(c, m.ID)
		targets = append(targets, Target{Ordinal: ord, PodName: m.ID, Addr: m.Addr, Incarnation: m.Incarnation})
	}
	started := time.Now()
	err := Install(ctx, acc, Action{Kind: ActionInstall, Config: cfg, Targets: targets})
	result := "ok"
	if err != nil {
		result = "error"
	}
	actionsTotal.WithLabelValues(string(ActionInstall), result).Inc()
	actionSeconds.WithLabelValues(string(ActionInstall)).Observe(time.Since(started).Seconds())
	if err != nil {
		return err
	}
	for _, t := range targets {
		info := acc.Status(ctx, t.Addr)
		if info.Err != "" || info.Incarnation != t.Incarnation || info.Epoch < cfg.Epoch {
			return fmt.Errorf("floor epoch %d is not fenced: %s reports incarnation %s at epoch %d (%s)",
				cfg.Epoch, t.PodName, FormatIncarnation(info.Incarnation), info.Epoch, info.Err)
		}
	}
	return nil
}

func gcStatus(st *kshakav1alpha1.KshakaClusterStatus) *kshakav1alpha1.TombstoneGCStatus {
	if st.TombstoneGC == nil {
		st.TombstoneGC = &kshakav1alpha1.TombstoneGCStatus{}
	}
	return st.TombstoneGC
}

// GCPacer returns a GC progress callback that, called after each batch with
// the candidates handled so far, waits until they were handled at no more
// than perSecond (or ctx ends). nil when perSecond is not positive.
func GCPacer(ctx context.Context, perSecond int) func(handled int) {
	if perSecond <= 0 {
		return nil
	}
	start := time.Now()
	return func(handled int) {
		want := time.Duration(float64(handled) / float64(perSecond) * float64(time.Second))
		wait := time.NewTimer(max(want-time.Since(start), 0))
		defer wait.Stop()
		select {
		case <-ctx.Done():
		case <-wait.C:
		}
	}
}
