package controllers

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kshaka-io/kshaka/membership"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// sim is a small model of everything around Decide: a StatefulSet
// controller that creates and deletes pods instantly, volume claims that
// hold each acceptor's storage (incarnation and configuration), and
// acceptors that apply SetConfig like the real ones. It checks the
// procedure's safety rules on every installation (docs/design.md §3, §5).
type sim struct {
	t    *testing.T
	c    *kshakav1alpha1.KshakaCluster
	sts  *int32
	pods map[int32]*simPod
	pvcs map[int32]*simDisk
	now  time.Time

	nextInc uint64
	// history holds every configuration installed anywhere, by epoch.
	history map[uint64]membership.Config
	// rescanned holds the epochs under which a full rescan completed.
	rescanned map[uint64]bool
	events    []Event
	// rescanBatches is how many batches a rescan takes.
	rescanBatches int
	batches       int
	// revision is the StatefulSet's update revision; pods record the one
	// they were created from.
	revision string
	// rolled lists the ordinals of pods deleted for a rolling update.
	rolled []int32
}

type simDisk struct {
	inc uint64
	cfg membership.Config
	// keys is the key count the acceptor reports.
	keys uint64
}

type simPod struct {
	disk     *simDisk
	down     bool
	ip       string
	revision string
}

func newCluster(replicas int32) *kshakav1alpha1.KshakaCluster {
	return &kshakav1alpha1.KshakaCluster{
		ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: "ns", UID: types.UID("uid-1"), Generation: 1},
		Spec: kshakav1alpha1.KshakaClusterSpec{
			Replicas:    replicas,
			Image:       "example.com/kshaka-acceptor",
			Version:     "v1",
			Storage:     kshakav1alpha1.StorageSpec{Size: ptr.To(resource.MustParse("1Gi"))},
			Service:     kshakav1alpha1.ServiceSpec{Port: 7400},
			AddressMode: kshakav1alpha1.AddressModeDNS,
		},
	}
}

func newSim(t *testing.T, replicas int32) *sim {
	return &sim{
		t: t, c: newCluster(replicas),
		pods: map[int32]*simPod{}, pvcs: map[int32]*simDisk{},
		now:     time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		nextInc: 0xa0, history: map[uint64]membership.Config{}, rescanned: map[uint64]bool{},
		rescanBatches: 2, revision: "rev-1",
	}
}

// syncPods plays the StatefulSet controller and the kubelet.
func (s *sim) syncPods() {
	if s.sts == nil {
		return
	}
	n := *s.sts
	for ord := range s.pods {
		if ord >= n {
			delete(s.pods, ord)
		}
	}
	for ord := range n {
		if _, ok := s.pods[ord]; ok {
			continue
		}
		disk, ok := s.pvcs[ord]
		if !ok {
			s.nextInc++
			disk = &simDisk{inc: s.nextInc}
			s.pvcs[ord] = disk
		}
		s.pods[ord] = &simPod{disk: disk, ip: fmt.Sprintf("10.0.0.%d", 10+int(s.nextInc%200)+int(ord)), revision: s.revision}
	}
}

func (s *sim) observe() Observed {
	s.syncPods()
	o := Observed{Cluster: s.c.DeepCopy(), Pods: map[int32]PodInfo{}, PVCs: map[int32]bool{}, Acceptors: map[int32]AcceptorInfo{}, Now: s.now}
	if s.sts != nil {
		o.StatefulSet = &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Replicas: ptr.To(*s.sts), VolumeClaimTemplates: claimTemplates(s.c)},
			Status: appsv1.StatefulSetStatus{UpdateRevision: s.revision, ReadyReplicas: s.readyPods()}}
	}
	for ord := range s.pvcs {
		o.PVCs[ord] = true
	}
	for ord, p := range s.pods {
		name := PodName(s.c, ord)
		addr := DNSAddress(s.c, name)
		if s.c.Spec.AddressMode == kshakav1alpha1.AddressModePodIP {
			addr = p.ip + ":7400"
		}
		_, admitted := p.disk.cfg.Member(p.disk.inc)
		admitted = admitted && p.disk.cfg.Epoch > 0
		o.Pods[ord] = PodInfo{Name: name, Address: addr, Ready: admitted && !p.down, Revision: p.revision}
		if p.down {
			o.Acceptors[ord] = AcceptorInfo{Err: "connection refused"}
			continue
		}
		o.Acceptors[ord] = AcceptorInfo{Incarnation: p.disk.inc, Epoch: p.disk.cfg.Epoch, Admitted: admitted, Healthy: true, KeyCount: p.disk.keys}
	}
	return o
}

// crash says where the operator "crashes" while carrying out a plan.
type crash int

const (
	noCrash      crash = iota
	beforeStatus       // nothing of the plan happens
	beforeAction       // the status is recorded, the action is not taken
	afterAction        // the action is taken, its result is not recorded
)

// step runs one reconcile and returns its plan.
func (s *sim) step(cr crash) Plan {
	s.t.Helper()
	p := Decide(s.observe())
	if cr == beforeStatus {
		return p
	}
	s.c.Status = *p.Status.DeepCopy()
	s.events = append(s.events, p.Events...)
	if !s.c.Spec.Paused {
		s.sts = ptr.To(p.StatefulSetReplicas)
	}
	if cr == beforeAction {
		return p
	}
	s.act(p, cr)
	s.now = s.now.Add(time.Second)
	return p
}

func (s *sim) act(p Plan, cr crash) {
	s.t.Helper()
	a := p.Action
	switch a.Kind {
	case ActionInstall:
		if rec, _ := ConfigFromStatus(p.Status.Configuration); rec.Epoch != a.Config.Epoch {
			s.t.Fatalf("installing epoch %d while status records epoch %d", a.Config.Epoch, rec.Epoch)
		}
		for _, tg := range a.Targets {
			pod, ok := s.pods[tg.Ordinal]
			if !ok || pod.down || pod.disk.inc != tg.Incarnation {
				return
			}
			s.install(pod.disk, a.Config)
		}
	case ActionRescan:
		s.checkFenced(a.Config, "rescanning under")
		s.batches++
		res := RescanResult{Cursor: []byte(fmt.Sprintf("k%03d", s.batches)), Keys: 10, Done: s.batches%s.rescanBatches == 0}
		if cr == afterAction {
			return
		}
		if res.Done {
			s.rescanned[a.Config.Epoch] = true
		}
		ev, err := AfterRescan(s.c, &s.c.Status, res)
		if err != nil {
			s.t.Fatal(err)
		}
		s.events = append(s.events, ev...)
	case ActionRecycle:
		delete(s.pvcs, a.Ordinal)
		delete(s.pods, a.Ordinal)
	case ActionRollPod:
		for ord, pod := range s.pods {
			if ord != a.Ordinal && (pod.down || pod.revision != s.revision) && pod.revision != "" {
				// Another pod is outdated too: fine, as long as it serves.
				if pod.down {
					s.t.Fatalf("rolling %s while pod %d is down", a.PodName, ord)
				}
			}
		}
		s.rolled = append(s.rolled, a.Ordinal)
		delete(s.pods, a.Ordinal) // the volume stays: same incarnation

	case ActionDeletePVC:
		if _, ok := s.pods[a.Ordinal]; ok {
			s.t.Fatalf("deleting the volume claim of running pod %s", a.PodName)
		}
		delete(s.pvcs, a.Ordinal)
	}
}

// install applies SetConfig like an acceptor, checking the procedure's
// rules the first time an epoch is installed anywhere.
func (s *sim) install(disk *simDisk, cfg membership.Config) {
	s.t.Helper()
	if err := cfg.Validate(); err != nil {
		s.t.Fatalf("installing an invalid configuration: %v", err)
	}
	if s.isRetired(disk.inc) {
		s.t.Fatalf("installing epoch %d on retired incarnation %x", cfg.Epoch, disk.inc)
	}
	if cfg.Epoch <= disk.cfg.Epoch {
		return
	}
	if _, seen := s.history[cfg.Epoch]; !seen {
		if prev, ok := s.history[cfg.Epoch-1]; ok {
			if err := membership.Compatible(prev, cfg); err != nil {
				s.t.Fatalf("epoch %d after %d: %v", cfg.Epoch, prev.Epoch, err)
			}
			s.checkFenced(prev, fmt.Sprintf("installing epoch %d after", cfg.Epoch))
			if !prev.IsStable() && !s.rescanned[prev.Epoch] {
				s.t.Fatalf("installing epoch %d before the rescan under joint epoch %d completed", cfg.Epoch, prev.Epoch)
			}
		} else if cfg.Epoch != 1 {
			s.t.Fatalf("epoch %d installed without epoch %d before it", cfg.Epoch, cfg.Epoch-1)
		}
		s.history[cfg.Epoch] = cfg.Clone()
	} else if !slices.Equal(s.history[cfg.Epoch].Members, cfg.Members) {
		s.t.Fatalf("two different configurations with epoch %d", cfg.Epoch)
	}
	disk.cfg = cfg.Clone()
}

// checkFenced fails unless cfg is fenced: every non-retired member of cfg
// and of the configuration before it has acknowledged cfg's epoch.
func (s *sim) checkFenced(cfg membership.Config, what string) {
	s.t.Helper()
	members := slices.Clone(cfg.Members)
	if prev, ok := s.history[cfg.Epoch-1]; ok {
		members = append(members, prev.Members...)
	}
	for _, m := range members {
		if s.isRetired(m.Incarnation) {
			continue
		}
		if disk := s.diskOf(m.Incarnation); disk == nil || disk.cfg.Epoch < cfg.Epoch {
			s.t.Fatalf("%s epoch %d, which is not fenced: %s has not acknowledged it", what, cfg.Epoch, m.ID)
		}
	}
}

func (s *sim) isRetired(inc uint64) bool {
	return slices.Contains(s.c.Status.RetiredIncarnations, FormatIncarnation(inc))
}

func (s *sim) diskOf(inc uint64) *simDisk {
	for _, d := range s.pvcs {
		if d.inc == inc {
			return d
		}
	}
	return nil
}

// run steps until the cluster is stable at spec.replicas with every member
// serving, or fails after limit steps. crashes picks a crash per step.
func (s *sim) run(limit int, crashes func() crash) {
	s.t.Helper()
	for range limit {
		cr := noCrash
		if crashes != nil {
			cr = crashes()
		}
		s.step(cr)
		if s.converged() {
			return
		}
	}
	s.t.Fatalf("not converged after %d steps: spec.replicas %d, sts %v, pvcs %d, retired %v\nconfiguration %+v\ntransition %+v\nconditions %+v",
		limit, s.c.Spec.Replicas, ptr.Deref(s.sts, -1), len(s.pvcs), s.c.Status.RetiredIncarnations, s.c.Status.Configuration, s.c.Status.Transition, s.c.Status.Conditions)
}

// readyPods counts the pods that serve (the StatefulSet's readyReplicas).
func (s *sim) readyPods() int32 {
	var n int32
	for _, p := range s.pods {
		if _, ok := p.disk.cfg.Member(p.disk.inc); ok && !p.down {
			n++
		}
	}
	return n
}

func (s *sim) converged() bool {
	st := s.c.Status
	cfg, ok := ConfigFromStatus(st.Configuration)
	if !ok || st.Transition != nil || int32(len(cfg.Members)) != s.c.Spec.Replicas || !cfg.IsStable() {
		return false
	}
	for _, m := range cfg.Members {
		if s.isRetired(m.Incarnation) {
			return false
		}
		d := s.diskOf(m.Incarnation)
		if d == nil || d.cfg.Epoch != cfg.Epoch {
			return false
		}
	}
	for _, p := range s.pods {
		if p.revision != s.revision {
			return false
		}
	}
	return len(s.pods) == int(s.c.Spec.Replicas) && s.sts != nil && *s.sts == s.c.Spec.Replicas && len(s.pvcs) == int(s.c.Spec.Replicas) &&
		meta.IsStatusConditionTrue(st.Conditions, kshakav1alpha1.ConditionAvailable)
}

func (s *sim) config() membership.Config {
	cfg, _ := ConfigFromStatus(s.c.Status.Configuration)
	return cfg
}

// loseDisk replaces ordinal ord's storage with an empty one, as when its
// volume is lost and the pod is recreated.
func (s *sim) loseDisk(ord int32) {
	s.nextInc++
	s.pvcs[ord] = &simDisk{inc: s.nextInc}
	s.pods[ord].disk = s.pvcs[ord]
}

// snapshotDisk copies ordinal ord's storage, as a volume snapshot would.
func (s *sim) snapshotDisk(ord int32) simDisk {
	d := s.pvcs[ord]
	return simDisk{inc: d.inc, cfg: d.cfg.Clone()}
}

// restoreDisk puts a snapshot back on ordinal ord's volume, in place: the
// claim and the pod stay, the acceptor comes back with the snapshot's
// incarnation and configuration (docs/design.md §4 "Rolled-back disks").
func (s *sim) restoreDisk(ord int32, snap simDisk) {
	*s.pvcs[ord] = simDisk{inc: snap.inc, cfg: snap.cfg.Clone()}
}

func (s *sim) eventReasons() []string {
	var out []string
	for _, e := range s.events {
		out = append(out, e.Reason)
	}
	return out
}

func TestSimBootstrapAndScale(t *testing.T) {
	s := newSim(t, 3)
	s.run(50, nil)
	if got := s.config(); got.Epoch != 1 || len(got.Members) != 3 {
		t.Fatalf("after bootstrap: %s", got)
	}
	for _, want := range []int32{4, 5, 4, 3, 1, 2} {
		s.c.Spec.Replicas = want
		s.c.Generation++
		s.run(100, nil)
	}
	// 3→4→5→4→3→2→1→2 is seven single-member changes of two epochs each.
	if got := s.config().Epoch; got != 1+2*7 {
		t.Fatalf("epoch %d after seven changes, want 15", got)
	}
	if len(s.c.Status.RetiredIncarnations) != 4 {
		t.Fatalf("retired %v, want the four removed members", s.c.Status.RetiredIncarnations)
	}
}

// TestSimOperatorRestarts crashes the operator at random points of every
// step (before recording status, between status and action, between an
// action and recording its result) and checks that the procedure's rules
// hold and the cluster still converges.
func TestSimOperatorRestarts(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			s := newSim(t, int32(1+r.IntN(5)))
			crashes := func() crash {
				if r.IntN(3) == 0 {
					return crash(1 + r.IntN(3))
				}
				return noCrash
			}
			s.run(300, crashes)
			for range 3 {
				s.c.Spec.Replicas = int32(1 + r.IntN(6))
				if r.IntN(3) == 0 && len(s.pods) > 1 {
					// Lose a disk of a member other than the only one.
					s.loseDisk(int32(r.IntN(len(s.pods))))
				}
				s.run(600, crashes)
			}
		})
	}
}

func TestSimDiskLossReplacesMember(t *testing.T) {
	s := newSim(t, 3)
	s.run(50, nil)
	old := s.pods[1].disk.inc
	s.loseDisk(1)
	s.run(100, nil)
	if !s.isRetired(old) {
		t.Fatalf("incarnation %x not retired: %v", old, s.c.Status.RetiredIncarnations)
	}
	m, ok := s.config().MemberByID("kc-1")
	if !ok || m.Incarnation != s.pods[1].disk.inc {
		t.Fatalf("kc-1 is %+v, want the new incarnation %x", m, s.pods[1].disk.inc)
	}
	// Remove (joint, final) then add (joint, final).
	if got := s.config().Epoch; got != 5 {
		t.Fatalf("epoch %d, want 5", got)
	}
	for _, want := range []string{ReasonDiskLost, EventMemberRemoved, EventMemberAdded} {
		if !slices.Contains(s.eventReasons(), want) {
			t.Errorf("no %s event in %v", want, s.eventReasons())
		}
	}
}

// TestSimRolledBackVolumeReplacesMember: a volume restored from a snapshot
// keeps its incarnation but lost promises and accepts (docs/design.md §4
// "Rolled-back disks"). The member is retired and replaced through the
// disk-loss procedure (remove the old incarnation, add the new one), and the
// retired incarnation is never installed on again (sim.install fails the
// test if it is).
func TestSimRolledBackVolumeReplacesMember(t *testing.T) {
	s := newSim(t, 3)
	s.run(50, nil)
	old := s.pods[1].disk.inc
	snap := s.snapshotDisk(1) // epoch 1
	s.c.Spec.Replicas = 4
	s.run(100, nil) // epoch 3
	s.restoreDisk(1, snap)
	s.run(100, nil)
	if !s.isRetired(old) {
		t.Fatalf("incarnation %x not retired: %v", old, s.c.Status.RetiredIncarnations)
	}
	m, ok := s.config().MemberByID("kc-1")
	if !ok || m.Incarnation == old || m.Incarnation != s.pods[1].disk.inc {
		t.Fatalf("kc-1 is %+v, want a new incarnation (old %x, on disk %x)", m, old, s.pods[1].disk.inc)
	}
	// Remove (joint, final) then add (joint, final) after epoch 3.
	if got := s.config().Epoch; got != 7 {
		t.Fatalf("epoch %d, want 7", got)
	}
	for _, want := range []string{ReasonVolumeRolledBack, EventRecycle, EventMemberRemoved, EventMemberAdded} {
		if !slices.Contains(s.eventReasons(), want) {
			t.Errorf("no %s event in %v", want, s.eventReasons())
		}
	}

	// The snapshot is restored once more, onto the new volume: the retired
	// incarnation is back at kc-1's address. Nothing is installed on it
	// (sim.install), and the status says what kc-1 reports.
	s.restoreDisk(1, snap)
	for range 20 {
		p := s.step(noCrash)
		for _, tg := range p.Action.Targets {
			if tg.Incarnation == old {
				t.Fatalf("action %+v targets retired incarnation %x", p.Action, old)
			}
		}
	}
	if s.pods[1].disk.cfg.Epoch != 1 {
		t.Fatalf("the retired incarnation got epoch %d", s.pods[1].disk.cfg.Epoch)
	}
	cond := meta.FindStatusCondition(s.c.Status.Conditions, kshakav1alpha1.ConditionDegraded)
	if want := fmt.Sprintf("kc-1 reports incarnation %s, not the member's", FormatIncarnation(old)); cond == nil || !strings.Contains(cond.Message, want) {
		t.Fatalf("Degraded = %+v, want it to say %q", cond, want)
	}
}

// TestSimRolledBackMidChange rolls a member's volume back while a scale up
// is rescanning under the joint epoch: the add finishes without it (it is
// retired, so it neither receives configurations nor holds up fences), then
// it is replaced.
func TestSimRolledBackMidChange(t *testing.T) {
	s := newSim(t, 3)
	s.run(50, nil)
	old := s.pods[0].disk.inc
	snap := s.snapshotDisk(0) // epoch 1
	s.c.Spec.Replicas = 4
	s.runUntil(s.atStep(kshakav1alpha1.TransitionAdd, kshakav1alpha1.StepRescan))
	if e := s.pods[0].disk.cfg.Epoch; e != 2 {
		t.Fatalf("kc-0 is at epoch %d, want the joint epoch 2", e)
	}
	s.restoreDisk(0, snap)
	s.run(200, nil)
	if !s.isRetired(old) {
		t.Fatalf("incarnation %x not retired: %v", old, s.c.Status.RetiredIncarnations)
	}
	if m, _ := s.config().MemberByID("kc-0"); m.Incarnation == old || len(s.config().Members) != 4 {
		t.Fatalf("configuration %s still holds kc-0's old incarnation %x", s.config(), old)
	}
}

// TestSimRolledBackWithOperatorRestarts rolls a random member's volume back
// across a random scale change while the operator crashes at random points;
// the member must be retired and replaced, and the procedure's rules hold
// throughout (sim.install, sim.checkFenced).
func TestSimRolledBackWithOperatorRestarts(t *testing.T) {
	for seed := range uint64(100) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 2))
			n0 := int32(2 + r.IntN(4))
			n1 := int32(2 + r.IntN(4))
			if n1 >= n0 {
				n1++ // a change: 2..6, not n0
			}
			s := newSim(t, n0)
			crashes := func() crash {
				if r.IntN(3) == 0 {
					return crash(1 + r.IntN(3))
				}
				return noCrash
			}
			s.run(300, crashes)
			// A member that stays through the change (scaling removes the
			// highest ordinals).
			ord := int32(r.IntN(int(min(n0, n1))))
			snap := s.snapshotDisk(ord)
			s.c.Spec.Replicas = n1
			s.run(600, crashes)
			if m, _ := s.config().MemberByID(PodName(s.c, ord)); m.Incarnation != snap.inc || s.pods[ord].disk.cfg.Epoch <= snap.cfg.Epoch {
				t.Fatalf("kc-%d: member %+v at epoch %d, snapshot %x at epoch %d", ord, m, s.pods[ord].disk.cfg.Epoch, snap.inc, snap.cfg.Epoch)
			}
			s.restoreDisk(ord, snap)
			s.run(600, crashes)
			if !s.isRetired(snap.inc) {
				t.Fatalf("rolled-back incarnation %x not retired: %v", snap.inc, s.c.Status.RetiredIncarnations)
			}
		})
	}
}

func TestSimUnreachableMemberBlocks(t *testing.T) {
	s := newSim(t, 3)
	s.run(50, nil)
	s.pods[2].down = true
	s.c.Spec.Replicas = 4
	for range 20 {
		s.step(noCrash)
	}
	if s.config().Epoch != 1 {
		t.Fatalf("a change went ahead with kc-2 down: %s", s.config())
	}
	cond := meta.FindStatusCondition(s.c.Status.Conditions, kshakav1alpha1.ConditionDegraded)
	if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != ReasonMemberNotServing {
		t.Fatalf("Degraded = %+v", cond)
	}
	if want := "cannot add a member: kc-2 is unreachable: connection refused"; cond.Message != want {
		t.Fatalf("Degraded message %q, want %q", cond.Message, want)
	}
	if !meta.IsStatusConditionTrue(s.c.Status.Conditions, kshakav1alpha1.ConditionAvailable) {
		t.Fatalf("two of three members serve, yet not Available: %+v", s.c.Status.Conditions)
	}
	if s.c.Status.Quorum != kshakav1alpha1.QuorumDegraded {
		t.Fatalf("quorum %q", s.c.Status.Quorum)
	}
	s.pods[2].down = false
	s.run(100, nil)
}

func TestSimUnreachableMidChangeBlocksFence(t *testing.T) {
	s := newSim(t, 3)
	s.run(50, nil)
	s.c.Spec.Replicas = 4
	// Run until the joint configuration is recorded, then take kc-0 down
	// before it acknowledges it.
	for s.c.Status.Transition == nil || s.c.Status.Transition.Step != kshakav1alpha1.StepInstallJoint {
		s.step(noCrash)
	}
	s.pods[0].down = true
	for range 20 {
		s.step(noCrash)
	}
	tr := s.c.Status.Transition
	if tr == nil || tr.Step != kshakav1alpha1.StepInstallJoint {
		t.Fatalf("transition moved on without kc-0: %+v", tr)
	}
	cond := meta.FindStatusCondition(s.c.Status.Conditions, kshakav1alpha1.ConditionDegraded)
	if cond == nil || cond.Reason != ReasonMemberUnreachable || cond.Message != "epoch 2 is not fenced: kc-0 is unreachable: connection refused" {
		t.Fatalf("Degraded = %+v", cond)
	}
	s.pods[0].down = false
	s.run(100, nil)
}

func TestSimPausedFreezes(t *testing.T) {
	s := newSim(t, 3)
	s.run(50, nil)
	s.c.Spec.Paused = true
	s.c.Spec.Replicas = 5
	for range 10 {
		if p := s.step(noCrash); p.Action.Kind != ActionNone {
			t.Fatalf("paused cluster acted: %+v", p.Action)
		}
	}
	if *s.sts != 3 || s.c.Status.Transition != nil {
		t.Fatalf("paused cluster changed: sts %d, transition %+v", *s.sts, s.c.Status.Transition)
	}
	cond := meta.FindStatusCondition(s.c.Status.Conditions, kshakav1alpha1.ConditionProgressing)
	if cond == nil || cond.Reason != ReasonPaused {
		t.Fatalf("Progressing = %+v", cond)
	}
	s.c.Spec.Paused = false
	s.run(100, nil)
}

func TestSimPodIPReaddress(t *testing.T) {
	s := newSim(t, 3)
	s.c.Spec.AddressMode = kshakav1alpha1.AddressModePodIP
	s.run(50, nil)
	s.pods[1].ip = "10.9.9.9"
	s.run(50, nil)
	m, _ := s.config().MemberByID("kc-1")
	if m.Addr != "10.9.9.9:7400" || s.config().Epoch != 2 {
		t.Fatalf("after the IP change: %+v in %s", m, s.config())
	}
}
