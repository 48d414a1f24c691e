package controllers

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kshaka-io/kshaka/membership"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// runUntil steps s until done holds.
func (s *sim) runUntil(done func() bool) {
	s.t.Helper()
	for range 200 {
		if done() {
			return
		}
		s.step(noCrash)
	}
	s.t.Fatalf("condition not reached; transition %+v", s.c.Status.Transition)
}

func (s *sim) atStep(kind kshakav1alpha1.TransitionKind, step kshakav1alpha1.TransitionStep) func() bool {
	return func() bool {
		tr := s.c.Status.Transition
		return tr != nil && tr.Kind == kind && tr.Step == step
	}
}

// stable returns a sim with a bootstrapped cluster of n members.
func stable(t *testing.T, n int32) *sim {
	s := newSim(t, n)
	s.run(50, nil)
	return s
}

func targetNames(ts []Target) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.PodName)
	}
	return out
}

func condition(p Plan, typ string) metav1.Condition {
	if c := meta.FindStatusCondition(p.Status.Conditions, typ); c != nil {
		return *c
	}
	return metav1.Condition{}
}

// TestDecide walks the decision function through each step of docs/design.md §5.
// Each case builds a situation with the model of sim_test.go, makes one
// decision, and checks the recorded intent, the StatefulSet size and the one
// action.
func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(s *sim)
		check func(t *testing.T, s *sim, p Plan)
	}{{
		name:  "bootstrap creates the StatefulSet and waits for incarnations",
		setup: func(s *sim) {},
		check: func(t *testing.T, s *sim, p Plan) {
			if p.StatefulSetReplicas != 3 || p.Action.Kind != ActionNone || p.Status.Configuration != nil {
				t.Fatalf("plan %+v", p)
			}
			if c := condition(p, kshakav1alpha1.ConditionProgressing); c.Reason != ReasonWaitingForMembers || c.Message != "waiting for kc-0 to start" {
				t.Fatalf("Progressing %+v", c)
			}
			if c := condition(p, kshakav1alpha1.ConditionAvailable); c.Status != metav1.ConditionFalse || c.Reason != ReasonNoConfiguration {
				t.Fatalf("Available %+v", c)
			}
		},
	}, {
		name:  "bootstrap records Stable(1) and installs it on every acceptor",
		setup: func(s *sim) { s.sts = new(int32); *s.sts = 3 },
		check: func(t *testing.T, s *sim, p Plan) {
			want := membership.Stable(1,
				membership.Member{ID: "kc-0", Addr: "kc-0.kc-peers.ns.svc:7400", Incarnation: 0xa1},
				membership.Member{ID: "kc-1", Addr: "kc-1.kc-peers.ns.svc:7400", Incarnation: 0xa2},
				membership.Member{ID: "kc-2", Addr: "kc-2.kc-peers.ns.svc:7400", Incarnation: 0xa3})
			got, _ := ConfigFromStatus(p.Status.Configuration)
			if got.String() != want.String() || !slices.Equal(got.Members, want.Members) {
				t.Fatalf("recorded %s, want %s", got, want)
			}
			if p.Action.Kind != ActionInstall || !slices.Equal(targetNames(p.Action.Targets), []string{"kc-0", "kc-1", "kc-2"}) {
				t.Fatalf("action %+v", p.Action)
			}
			if tr := p.Status.Transition; tr == nil || tr.Kind != kshakav1alpha1.TransitionBootstrap || tr.Step != kshakav1alpha1.StepInstallFinal {
				t.Fatalf("transition %+v", tr)
			}
		},
	}, {
		name: "restart mid-bootstrap installs only where it is missing",
		setup: func(s *sim) {
			s.sts = new(int32)
			*s.sts = 3
			p := s.step(beforeAction)
			s.install(s.pods[1].disk, p.Action.Config)
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if !slices.Equal(targetNames(p.Action.Targets), []string{"kc-0", "kc-2"}) {
				t.Fatalf("targets %v", targetNames(p.Action.Targets))
			}
		},
	}, {
		name: "bootstrap refuses an acceptor that already holds a configuration",
		setup: func(s *sim) {
			s.sts = new(int32)
			*s.sts = 3
			s.syncPods()
			s.pods[1].disk.cfg = membership.Stable(7, membership.Member{ID: "x", Addr: "x:1", Incarnation: 0xa2})
		},
		check: func(t *testing.T, s *sim, p Plan) {
			c := condition(p, kshakav1alpha1.ConditionDegraded)
			if p.Action.Kind != ActionNone || c.Reason != ReasonBlocked || !strings.Contains(c.Message, "kc-1 already holds a configuration (epoch 7)") {
				t.Fatalf("action %+v, Degraded %+v", p.Action, c)
			}
		},
	}, {
		name:  "scale up records the new member and grows the StatefulSet first",
		setup: func(s *sim) { s.c.Spec.Replicas = 4 },
		check: func(t *testing.T, s *sim, p Plan) {
			tr := p.Status.Transition
			if tr == nil || tr.Kind != kshakav1alpha1.TransitionAdd || tr.Step != kshakav1alpha1.StepStartMember || tr.Member.ID != "kc-3" || tr.Reason != kshakav1alpha1.ReasonScaleUp {
				t.Fatalf("transition %+v", tr)
			}
			if p.StatefulSetReplicas != 4 || p.Action.Kind != ActionNone {
				t.Fatalf("sts %d, action %+v", p.StatefulSetReplicas, p.Action)
			}
			if c := condition(p, kshakav1alpha1.ConditionMembershipChanging); c.Status != metav1.ConditionTrue {
				t.Fatalf("MembershipChanging %+v", c)
			}
		},
	}, {
		name: "the new member gets the joint configuration before anyone else",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.step(noCrash)
		},
		check: func(t *testing.T, s *sim, p Plan) {
			tr := p.Status.Transition
			if tr.Step != kshakav1alpha1.StepInstallJoint || tr.Member.Incarnation != FormatIncarnation(0xa4) {
				t.Fatalf("transition %+v", tr)
			}
			joint, _ := ConfigFromStatus(p.Status.Configuration)
			if joint.Epoch != 2 || joint.PrepareQuorum != 2 || joint.AcceptQuorum != 3 || len(joint.AcceptSet()) != 4 || len(joint.PrepareSet()) != 3 {
				t.Fatalf("joint %s", joint)
			}
			// Only the new member, until it has acknowledged the joint
			// epoch; then everyone else.
			if got := targetNames(p.Action.Targets); !slices.Equal(got, []string{"kc-3"}) {
				t.Fatalf("targets %v, want kc-3 alone first", got)
			}
			s.c.Status = *p.Status.DeepCopy()
			s.install(s.pods[3].disk, p.Action.Config)
			if got := targetNames(Decide(s.observe()).Action.Targets); !slices.Equal(got, []string{"kc-0", "kc-1", "kc-2"}) {
				t.Fatalf("targets %v once kc-3 has the joint configuration", got)
			}
		},
	}, {
		name: "restart mid-joint: install only on the members without it",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.step(noCrash)
			p := s.step(beforeAction) // records InstallJoint, then the operator dies
			s.install(s.pods[3].disk, p.Action.Config)
			s.install(s.pods[0].disk, p.Action.Config)
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if p.Action.Kind != ActionInstall || p.Action.Config.Epoch != 2 || !slices.Equal(targetNames(p.Action.Targets), []string{"kc-1", "kc-2"}) {
				t.Fatalf("action %+v", p.Action)
			}
		},
	}, {
		name: "a new member that cannot be reached gets nothing, and nobody else does",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.step(noCrash)
			s.step(beforeAction)
			s.pods[3].down = true
		},
		check: func(t *testing.T, s *sim, p Plan) {
			c := condition(p, kshakav1alpha1.ConditionDegraded)
			if p.Action.Kind != ActionNone || c.Reason != ReasonMemberUnreachable || c.Message != "epoch 2 is not fenced: kc-3 is unreachable: connection refused" {
				t.Fatalf("action %+v, Degraded %+v", p.Action, c)
			}
		},
	}, {
		name: "joint fenced: move on to the rescan",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.runUntil(func() bool { return s.c.Status.Configuration.Epoch == 2 && s.pods[2].disk.cfg.Epoch == 2 })
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if tr := p.Status.Transition; tr.Step != kshakav1alpha1.StepRescan || p.Action.Kind != ActionNone {
				t.Fatalf("transition %+v action %+v", tr, p.Action)
			}
			if p.Events[0].Reason != EventJointInstalled {
				t.Fatalf("events %+v", p.Events)
			}
		},
	}, {
		name: "restart mid-rescan resumes from the recorded cursor under the joint epoch",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.runUntil(s.atStep(kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan))
			s.c.Status.Transition.RescanCursor = []byte("k5")
			s.c.Status.Transition.KeysRescanned = 5
		},
		check: func(t *testing.T, s *sim, p Plan) {
			a := p.Action
			if a.Kind != ActionRescan || string(a.Cursor) != "k5" || a.Config.Epoch != 2 || len(a.Targets) != 4 || len(a.Endpoints) != 4 {
				t.Fatalf("action %+v", a)
			}
			if c := condition(p, kshakav1alpha1.ConditionMembershipChanging); c.Message != "Add kc-3 (ScaleUp): step Rescan, 5 keys rescanned" {
				t.Fatalf("MembershipChanging %+v", c)
			}
		},
	}, {
		name: "rescan waits for a member that went away",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.runUntil(s.atStep(kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan))
			s.pods[1].down = true
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if c := condition(p, kshakav1alpha1.ConditionDegraded); p.Action.Kind != ActionNone || c.Reason != ReasonMemberUnreachable {
				t.Fatalf("action %+v, Degraded %+v", p.Action, c)
			}
		},
	}, {
		name: "rescan done: final configuration recorded and installed",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.runUntil(s.atStep(kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepInstallFinal))
		},
		check: func(t *testing.T, s *sim, p Plan) {
			final, _ := ConfigFromStatus(p.Status.Configuration)
			if final.Epoch != 3 || !final.IsStable() || len(final.Members) != 4 {
				t.Fatalf("final %s", final)
			}
			if p.Action.Kind != ActionInstall || len(p.Action.Targets) != 4 {
				t.Fatalf("action %+v", p.Action)
			}
		},
	}, {
		name: "final fenced: the add is complete",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.runUntil(func() bool { return s.c.Status.Configuration.Epoch == 3 && s.pods[0].disk.cfg.Epoch == 3 })
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if p.Status.Transition != nil || p.Status.Quorum != kshakav1alpha1.QuorumHealthy || p.Status.Replicas != 4 {
				t.Fatalf("status %+v", p.Status)
			}
			if !slices.ContainsFunc(p.Events, func(e Event) bool { return e.Reason == EventMemberAdded }) {
				t.Fatalf("events %+v", p.Events)
			}
		},
	}, {
		name:  "scale down removes the highest member from P first; its pod stays",
		setup: func(s *sim) { s.c.Spec.Replicas = 2 },
		check: func(t *testing.T, s *sim, p Plan) {
			tr := p.Status.Transition
			if tr.Kind != kshakav1alpha1.TransitionRemove || tr.Member.ID != "kc-2" || tr.Step != kshakav1alpha1.StepInstallJoint {
				t.Fatalf("transition %+v", tr)
			}
			joint, _ := ConfigFromStatus(p.Status.Configuration)
			want, _, _ := membership.Steps(s.config(), membership.Change{Kind: membership.Remove, Member: memberFromStatus(*tr.Member)})
			if !slices.Equal(joint.Members, want.Members) || joint.String() != want.String() {
				t.Fatalf("joint %s, want the planner's %s", joint, want)
			}
			if m, _ := joint.MemberByID("kc-2"); m.Prepare {
				t.Fatalf("joint %s keeps kc-2 in P", joint)
			}
			// The fence of the joint configuration covers the leaving member.
			if p.StatefulSetReplicas != 3 || len(p.Action.Targets) != 3 {
				t.Fatalf("sts %d, action %+v", p.StatefulSetReplicas, p.Action)
			}
		},
	}, {
		name: "remove: final fenced, member retired, StatefulSet shrinks",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 2
			s.runUntil(func() bool {
				return s.c.Status.Configuration.Epoch == 3 && s.pods[0].disk.cfg.Epoch == 3 && s.pods[1].disk.cfg.Epoch == 3
			})
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if tr := p.Status.Transition; tr.Step != kshakav1alpha1.StepRemovePod {
				t.Fatalf("transition %+v", tr)
			}
			if !slices.Contains(p.Status.RetiredIncarnations, FormatIncarnation(0xa3)) || p.StatefulSetReplicas != 2 {
				t.Fatalf("retired %v sts %d", p.Status.RetiredIncarnations, p.StatefulSetReplicas)
			}
		},
	}, {
		name: "remove: pod gone, delete its volume claim",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 2
			s.runUntil(s.atStep(kshakav1alpha1.TransitionRemove, kshakav1alpha1.StepRemovePod))
			s.syncPods()
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if p.Action.Kind != ActionDeletePVC || p.Action.PVCName != "data-kc-2" || p.Status.Transition.Step != kshakav1alpha1.StepDeleteVolume {
				t.Fatalf("action %+v transition %+v", p.Action, p.Status.Transition)
			}
		},
	}, {
		name: "remove: volume claim gone, the remove is complete",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 2
			s.runUntil(s.atStep(kshakav1alpha1.TransitionRemove, kshakav1alpha1.StepDeleteVolume))
			delete(s.pvcs, 2)
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if p.Status.Transition != nil || p.Action.Kind != ActionNone {
				t.Fatalf("transition %+v action %+v", p.Status.Transition, p.Action)
			}
		},
	}, {
		name:  "disk loss retires the member and starts its removal",
		setup: func(s *sim) { s.loseDisk(1) },
		check: func(t *testing.T, s *sim, p Plan) {
			if !slices.Contains(p.Status.RetiredIncarnations, FormatIncarnation(0xa2)) {
				t.Fatalf("retired %v", p.Status.RetiredIncarnations)
			}
			tr := p.Status.Transition
			if tr.Kind != kshakav1alpha1.TransitionRemove || tr.Reason != kshakav1alpha1.ReasonReplace || tr.Member.ID != "kc-1" {
				t.Fatalf("transition %+v", tr)
			}
			// The retired member neither receives the joint configuration nor
			// holds up its fence.
			if got := targetNames(p.Action.Targets); !slices.Equal(got, []string{"kc-0", "kc-2"}) {
				t.Fatalf("targets %v", got)
			}
			if p.Events[0].Reason != ReasonDiskLost {
				t.Fatalf("events %+v", p.Events)
			}
		},
	}, {
		// docs/design.md §4 "Rolled-back disks": kc-1's volume is restored from a
		// snapshot taken at epoch 1 after it acknowledged epoch 3. Same
		// incarnation, lower epoch: it lost promises and accepts, so it is
		// a lost disk, not a member that is merely behind.
		name: "a rolled-back volume retires the member and recycles its volume",
		setup: func(s *sim) {
			snap := s.snapshotDisk(1)
			s.c.Spec.Replicas = 4
			s.run(100, nil)
			if e := s.pods[1].disk.cfg.Epoch; e != 3 {
				s.t.Fatalf("kc-1 is at epoch %d, want 3", e)
			}
			s.restoreDisk(1, snap)
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if !slices.Contains(p.Status.RetiredIncarnations, FormatIncarnation(0xa2)) {
				t.Fatalf("retired %v, want kc-1's incarnation %s: a rolled-back volume must be retired like a lost disk",
					p.Status.RetiredIncarnations, FormatIncarnation(0xa2))
			}
			// It still answers as an admitted member of its old epoch: it
			// must stop serving at once, so its claim and pod go and the
			// StatefulSet brings it back empty, with a new incarnation.
			if p.Action.Kind != ActionRecycle || p.Action.PodName != "kc-1" || p.Action.PVCName != "data-kc-1" {
				t.Fatalf("action %+v, want Recycle of kc-1", p.Action)
			}
			const why = "volume rolled back: acknowledged epoch 3, now reports 1"
			if !slices.ContainsFunc(p.Events, func(e Event) bool {
				return e.Type == "Warning" && e.Reason == ReasonVolumeRolledBack && strings.Contains(e.Message, why)
			}) {
				t.Fatalf("events %+v lack a warning saying %q", p.Events, why)
			}
			if c := condition(p, kshakav1alpha1.ConditionDegraded); c.Status != metav1.ConditionTrue || c.Reason != ReasonVolumeRolledBack || !strings.Contains(c.Message, why) {
				t.Fatalf("Degraded %+v does not say %q", c, why)
			}
			// The record is not lowered, and the row says what happened.
			row := p.Status.Members[1]
			if rec := row.HighestAcknowledged; rec == nil || rec.Epoch != 3 || rec.Incarnation != FormatIncarnation(0xa2) ||
				row.AcknowledgedEpoch != 1 || row.Message != why {
				t.Fatalf("kc-1's row %+v (record %+v)", row, row.HighestAcknowledged)
			}
			// A rolled-back member does not count towards the quorums.
			if p.Status.Quorum != kshakav1alpha1.QuorumDegraded {
				t.Fatalf("quorum %s with kc-1 rolled back", p.Status.Quorum)
			}
		},
	}, {
		name: "the acknowledged epoch is remembered while the member is down",
		setup: func(s *sim) {
			snap := s.snapshotDisk(1)
			s.c.Spec.Replicas = 4
			s.run(100, nil)
			s.pods[1].down = true
			s.step(noCrash)
			if rec := s.c.Status.Members[1].HighestAcknowledged; rec == nil || rec.Epoch != 3 || s.c.Status.Members[1].Reachable {
				s.t.Fatalf("kc-1 down: row %+v", s.c.Status.Members[1])
			}
			s.restoreDisk(1, snap)
			s.pods[1].down = false
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if !slices.Contains(p.Status.RetiredIncarnations, FormatIncarnation(0xa2)) || p.Action.Kind != ActionRecycle || p.Action.PodName != "kc-1" {
				t.Fatalf("retired %v, action %+v", p.Status.RetiredIncarnations, p.Action)
			}
		},
	}, {
		name: "the only member's rolled-back volume is retired but kept: it holds the only copy",
		setup: func(s *sim) {
			*s = *stable(s.t, 1)
			snap := s.snapshotDisk(0)
			s.c.Spec.Replicas = 2
			s.run(100, nil)
			s.c.Spec.Replicas = 1
			s.run(100, nil) // epoch 5, kc-0 alone again
			s.restoreDisk(0, snap)
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if !slices.Contains(p.Status.RetiredIncarnations, FormatIncarnation(0xa1)) {
				t.Fatalf("retired %v", p.Status.RetiredIncarnations)
			}
			if p.Action.Kind == ActionRecycle {
				t.Fatalf("recycled the only copy: %+v", p.Action)
			}
			c := condition(p, kshakav1alpha1.ConditionDegraded)
			if c.Reason != ReasonVolumeRolledBack || !strings.Contains(c.Message, "volume rolled back: acknowledged epoch 5, now reports 1") ||
				!strings.Contains(c.Message, "its volume is kept") || !strings.Contains(c.Message, "cannot remove the last member") {
				t.Fatalf("Degraded %+v", c)
			}
			if p.Status.Quorum != kshakav1alpha1.QuorumLost {
				t.Fatalf("quorum %s", p.Status.Quorum)
			}
		},
	}, {
		name: "the only member losing its disk is reported, not papered over",
		setup: func(s *sim) {
			*s = *stable(s.t, 1)
			s.loseDisk(0)
		},
		check: func(t *testing.T, s *sim, p Plan) {
			c := condition(p, kshakav1alpha1.ConditionDegraded)
			if c.Reason != ReasonBlocked || !strings.Contains(c.Message, "cannot remove the last member") {
				t.Fatalf("Degraded %+v", c)
			}
			if a := condition(p, kshakav1alpha1.ConditionAvailable); a.Status != metav1.ConditionFalse || p.Status.Quorum != kshakav1alpha1.QuorumLost {
				t.Fatalf("Available %+v quorum %s", a, p.Status.Quorum)
			}
		},
	}, {
		name: "a new member that comes up with a retired incarnation is recycled",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.step(noCrash)
			s.syncPods()
			s.c.Status.RetiredIncarnations = append(s.c.Status.RetiredIncarnations, FormatIncarnation(s.pods[3].disk.inc))
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if p.Action.Kind != ActionRecycle || p.Action.PVCName != "data-kc-3" || p.Action.PodName != "kc-3" {
				t.Fatalf("action %+v", p.Action)
			}
		},
	}, {
		name: "a person may retire an unreachable member by annotation",
		setup: func(s *sim) {
			s.pods[2].down = true
			s.c.Annotations = map[string]string{AnnotationRetire: FormatIncarnation(0xa3)}
		},
		check: func(t *testing.T, s *sim, p Plan) {
			tr := p.Status.Transition
			if tr == nil || tr.Kind != kshakav1alpha1.TransitionRemove || tr.Member.ID != "kc-2" {
				t.Fatalf("transition %+v", tr)
			}
		},
	}, {
		name: "scale up cancelled before anything was installed",
		setup: func(s *sim) {
			s.c.Spec.Replicas = 4
			s.step(noCrash)
			s.c.Spec.Replicas = 3
		},
		check: func(t *testing.T, s *sim, p Plan) {
			if p.Status.Transition != nil || p.StatefulSetReplicas != 3 {
				t.Fatalf("transition %+v sts %d", p.Status.Transition, p.StatefulSetReplicas)
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var s *sim
			if tc.name[:9] == "bootstrap" || strings.HasPrefix(tc.name, "restart mid-bootstrap") {
				s = newSim(t, 3)
			} else {
				s = stable(t, 3)
			}
			tc.setup(s)
			tc.check(t, s, Decide(s.observe()))
		})
	}
}

// TestKeysEstimated checks status.transition.keysEstimated: set when the
// rescan starts to the most keys a reachable acceptor reports, then kept
// (not re-estimated) for the rest of the transition, and gone with it.
func TestKeysEstimated(t *testing.T) {
	s := stable(t, 3)
	for ord, n := range map[int32]uint64{0: 10, 1: 25, 2: 7} {
		s.pvcs[ord].keys = n
	}
	s.rescanBatches = 3
	s.c.Spec.Replicas = 4
	s.runUntil(s.atStep(kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan))
	if tr := s.c.Status.Transition; tr.KeysEstimated != 25 || tr.KeysRescanned != 0 {
		t.Fatalf("at the start of the rescan: %+v", tr)
	}
	s.pvcs[0].keys = 100
	p := s.step(noCrash)
	if tr := s.c.Status.Transition; tr.Step != kshakav1alpha1.StepRescan || tr.KeysEstimated != 25 || tr.KeysRescanned != 10 {
		t.Fatalf("after one batch: %+v", tr)
	}
	if c := condition(p, kshakav1alpha1.ConditionMembershipChanging); c.Message != "Add kc-3 (ScaleUp): step Rescan, 0 keys rescanned of about 25" {
		t.Fatalf("MembershipChanging %q", c.Message)
	}
	s.runUntil(s.atStep(kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepInstallFinal))
	if tr := s.c.Status.Transition; tr.KeysEstimated != 25 || tr.KeysRescanned != 30 {
		t.Fatalf("after the rescan: %+v", tr)
	}
	s.runUntil(func() bool { return s.c.Status.Transition == nil })

	// The next change estimates afresh.
	s.c.Spec.Replicas = 3
	s.runUntil(s.atStep(kshakav1alpha1.TransitionRemove, kshakav1alpha1.StepRescan))
	if tr := s.c.Status.Transition; tr.KeysEstimated != 100 {
		t.Fatalf("the next rescan: %+v", tr)
	}
}

func TestAfterRescan(t *testing.T) {
	s := stable(t, 3)
	s.c.Spec.Replicas = 4
	s.runUntil(s.atStep(kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan))
	st := s.c.Status.DeepCopy()
	if _, err := AfterRescan(s.c, st, RescanResult{Cursor: []byte("b"), Keys: 3}); err != nil {
		t.Fatal(err)
	}
	if tr := st.Transition; string(tr.RescanCursor) != "b" || tr.KeysRescanned != 3 || tr.Step != kshakav1alpha1.StepRescan {
		t.Fatalf("transition %+v", tr)
	}
	ev, err := AfterRescan(s.c, st, RescanResult{Cursor: []byte("c"), Keys: 1, Done: true})
	if err != nil {
		t.Fatal(err)
	}
	if tr := st.Transition; tr.Step != kshakav1alpha1.StepInstallFinal || tr.KeysRescanned != 4 || st.Configuration.Epoch != 3 {
		t.Fatalf("transition %+v configuration %+v", tr, st.Configuration)
	}
	if len(ev) != 1 || ev[0].Reason != EventRescanned || !strings.Contains(ev[0].Message, "Rescanned 4 keys;") {
		t.Fatalf("events %+v", ev)
	}
	if _, err := AfterRescan(s.c, st, RescanResult{Done: true}); err == nil {
		t.Fatal("a rescan result outside the Rescan step was accepted")
	}
}

// TestRollingUpdate checks docs/design.md §6: a changed pod template reaches the
// pods one at a time, highest ordinal first, each pod coming back with its
// volume (no membership change), and never while another member is down.
func TestRollingUpdate(t *testing.T) {
	s := stable(t, 3)
	epoch := s.config().Epoch
	s.revision = "rev-2"
	s.run(50, nil)
	if !slices.Equal(s.rolled, []int32{2, 1, 0}) {
		t.Fatalf("rolled %v, want [2 1 0]", s.rolled)
	}
	for ord, pod := range s.pods {
		if pod.revision != "rev-2" {
			t.Fatalf("pod %d still at %q", ord, pod.revision)
		}
	}
	if got := s.config().Epoch; got != epoch {
		t.Fatalf("a rolling update changed the configuration: epoch %d → %d", epoch, got)
	}
	if !slices.Contains(s.eventReasons(), EventRollPod) {
		t.Fatalf("no %s event in %v", EventRollPod, s.eventReasons())
	}

	// A member that is down blocks the roll of the others.
	s.revision = "rev-3"
	s.rolled = nil
	s.pods[0].down = true
	p := Decide(s.observe())
	if p.Action.Kind == ActionRollPod {
		t.Fatalf("rolled %s while kc-0 is down", p.Action.PodName)
	}
	if c := condition(p, kshakav1alpha1.ConditionProgressing); !strings.Contains(c.Message, "kc-0") || !strings.Contains(c.Message, "rolling update") {
		t.Fatalf("Progressing does not say what the rolling update waits for: %+v", c)
	}
}
