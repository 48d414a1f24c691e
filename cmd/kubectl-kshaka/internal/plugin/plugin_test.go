package plugin

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/controllers"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it)", err)
	}
	if got != string(want) {
		t.Fatalf("output differs from %s (-update rewrites it):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestStatus(t *testing.T) {
	f := newFixtureIn(t, "demo")
	f.makeCluster("kc")
	f.event("kc.1", corev1.EventTypeWarning, "KshakaCluster", "kc", "MembershipChangeBlocked", "while rescanning: kc-2 is not incarnation 2c2c2c2c2c2c2c2c at epoch 6 any more", 30*time.Second)
	f.event("kc-2.1", corev1.EventTypeWarning, "Pod", "kc-2", "BackOff", "Back-off restarting failed container acceptor", time.Minute)
	f.event("kc.2", corev1.EventTypeNormal, "KshakaCluster", "kc", "JointInstalled", "not a warning", 10*time.Second)
	f.event("other-0.1", corev1.EventTypeWarning, "Pod", "other-0", "BackOff", "another cluster's pod", 5*time.Second)
	f.event("kc-10x.1", corev1.EventTypeWarning, "Pod", "kc-10x", "BackOff", "not one of kc's pods", 5*time.Second)

	r := f.run("status", "kc")
	if r.code != ExitOK {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.out, r.err)
	}
	golden(t, "status.golden", r.out)

	r = f.run("status", "kc", "-o", "json")
	if r.code != ExitOK {
		t.Fatalf("status -o json: exit %d\n%s", r.code, r.err)
	}
	var s Status
	if err := json.Unmarshal([]byte(r.out), &s); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, r.out)
	}
	q := s.Quorum
	if s.Schema != StatusSchema || q.Health != "Degraded" || q.Epoch != 6 || q.PrepareSet != 3 || q.AcceptSet != 4 ||
		q.ServingPrepare != 2 || q.ServingAccept != 3 || q.Tolerates != 0 || q.ToleratesWhenHealthy != 1 {
		t.Fatalf("quorum %+v", q)
	}
	if tr := s.Transition; tr == nil || tr.RescanPercent == nil || *tr.RescanPercent != 45 || tr.Member != "kc-3" || tr.AgeSeconds != 120 {
		t.Fatalf("transition %+v", tr)
	}
	if len(s.Members) != 4 || !s.Members[0].Serving || s.Members[2].Serving || s.Members[2].MemberIncarnation != inc2 || s.Members[3].Prepare {
		t.Fatalf("members %+v", s.Members)
	}
	if len(s.Events) != 2 || s.Events[0].Reason != "MembershipChangeBlocked" || s.Events[1].Object != "Pod/kc-2" {
		t.Fatalf("events %+v", s.Events)
	}
	if s.TLS == nil || s.TLS.Acceptors == nil || s.TLS.Acceptors.InSeconds != 89*24*3600 {
		t.Fatalf("tls %+v", s.TLS)
	}

	r = f.run("status", "kc", "-o", "yaml", "--events", "0")
	var y Status
	if err := yaml.Unmarshal([]byte(r.out), &y); r.code != ExitOK || err != nil || y.Quorum != s.Quorum || len(y.Events) != 0 {
		t.Fatalf("status -o yaml: exit %d, %v\n%s%s", r.code, err, r.out, r.err)
	}

	if r := f.run("status", "nope"); r.code != ExitNotFound || !strings.Contains(r.err, "KshakaCluster nope not found in namespace "+f.ns) {
		t.Fatalf("status of a missing cluster: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("status", "kc", "-o", "wide"); r.code != ExitUsage || !strings.Contains(r.err, "use table, json or yaml") {
		t.Fatalf("status -o wide: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("status"); r.code != ExitUsage {
		t.Fatalf("status without a cluster: exit %d\n%s", r.code, r.err)
	}
}

func TestStatusQuorumLost(t *testing.T) {
	f := newFixture(t)
	c := f.makeCluster("kc")
	for i := range c.Status.Members {
		if i != 0 {
			c.Status.Members[i] = kshakav1alpha1.MemberStatus{Ordinal: int32(i), PodName: c.Status.Members[i].PodName, Message: "unreachable: connection refused"}
		}
	}
	c.Status.Quorum = kshakav1alpha1.QuorumLost
	if err := adminCl.Status().Update(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	r := f.run("status", "kc")
	if r.code != ExitQuorumLost || !strings.Contains(r.out, "Tolerates:") || !strings.Contains(r.out, "none: quorum is lost") ||
		!strings.Contains(r.err, "no quorum of epoch 6 is serving (1 of 3 in P serving, 2 needed; 1 of 4 in S, 3 needed)") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
}

func TestStatusBeforeConfiguration(t *testing.T) {
	f := newFixture(t)
	f.create(&kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "fresh"}})
	r := f.run("status", "fresh", "-o", "json")
	var s Status
	if err := json.Unmarshal([]byte(r.out), &s); r.code != ExitOK || err != nil || s.Quorum.Health != "Unknown" || s.Replicas != 3 || s.Members == nil {
		t.Fatalf("exit %d, %v: %s%s", r.code, err, r.out, r.err)
	}
	if r := f.run("status", "fresh"); r.code != ExitOK || !strings.Contains(r.out, "Unknown: no configuration installed yet") || !strings.Contains(r.out, "(none yet)") {
		t.Fatalf("exit %d\n%s%s", r.code, r.out, r.err)
	}
}

func TestPauseResume(t *testing.T) {
	f := newFixture(t)
	f.makeCluster("kc")
	if r := f.run("pause", "kc"); r.code != ExitOK || !strings.Contains(r.out, "kshakacluster/kc paused") || !f.cluster("kc").Spec.Paused {
		t.Fatalf("pause: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := f.run("pause", "kc"); r.code != ExitOK || r.out != "kshakacluster/kc is already paused\n" {
		t.Fatalf("pause again: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := f.run("status", "kc"); !strings.Contains(r.out, "Paused:") {
		t.Fatalf("status of a paused cluster:\n%s", r.out)
	}
	if r := f.run("resume", "kc"); r.code != ExitOK || r.out != "kshakacluster/kc resumed\n" || f.cluster("kc").Spec.Paused {
		t.Fatalf("resume: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := f.run("resume", "kc"); r.code != ExitOK || r.out != "kshakacluster/kc is already not paused\n" {
		t.Fatalf("resume again: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := f.run("pause", "nope"); r.code != ExitNotFound {
		t.Fatalf("pause of a missing cluster: exit %d\n%s", r.code, r.err)
	}
}

func TestRetire(t *testing.T) {
	f := newFixture(t)
	f.makeCluster("kc")
	annotation := func() string { return f.cluster("kc").Annotations[controllers.AnnotationRetire] }

	// Without --yes and without a terminal: refused, nothing changed.
	r := f.run("retire", "kc", "kc-2")
	if r.code != ExitNotConfirmed || !strings.Contains(r.err, "standard input is not a terminal") || annotation() != "" {
		t.Fatalf("retire without --yes on a non-terminal: exit %d, annotation %q\n%s", r.code, annotation(), r.err)
	}
	for _, want := range []string{"storage of member kc-2 (incarnation 2c2c2c2c2c2c2c2c)", "gone forever", "stale data", "cannot be undone"} {
		if !strings.Contains(r.err, want) {
			t.Fatalf("the assertion text lacks %q:\n%s", want, r.err)
		}
	}
	// A terminal, and the wrong answer.
	if r := f.runIn("kc-1\n", true, "retire", "kc", "kc-2"); r.code != ExitNotConfirmed || annotation() != "" ||
		!strings.Contains(r.err, "Type the pod name (kc-2) to confirm") {
		t.Fatalf("retire with the wrong answer: exit %d, annotation %q\n%s", r.code, annotation(), r.err)
	}
	// No answer at all.
	if r := f.runIn("", true, "retire", "kc", "kc-2"); r.code != ExitNotConfirmed || annotation() != "" {
		t.Fatalf("retire without an answer: exit %d\n%s", r.code, r.err)
	}
	// The right answer.
	if r := f.runIn("kc-2\n", true, "retire", "kc", "kc-2"); r.code != ExitOK || annotation() != inc2 ||
		!strings.Contains(r.out, "annotated kshaka.io/retire-incarnations="+inc2) {
		t.Fatalf("retire confirmed: exit %d, annotation %q\n%s%s", r.code, annotation(), r.out, r.err)
	}
	// Again: already asserted, by pod or by incarnation.
	for _, arg := range []string{"kc-2", inc2} {
		if r := f.run("retire", "kc", arg); r.code != ExitOK || !strings.Contains(r.out, "already asserted") || annotation() != inc2 {
			t.Fatalf("retire %s again: exit %d\n%s%s", arg, r.code, r.out, r.err)
		}
	}
	if r := f.run("status", "kc"); !regexp.MustCompile(`Retire asserted: +` + inc2 + ` \(not retired yet\)`).MatchString(r.out) {
		t.Fatalf("status after retire:\n%s", r.out)
	}
	// A serving member is refused, as is a pod that is no member.
	if r := f.run("retire", "kc", "kc-1", "--yes"); r.code != ExitUsage || !strings.Contains(r.err, "kc-1 is reachable and reports incarnation "+inc1) || annotation() != inc2 {
		t.Fatalf("retire a serving member: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("retire", "kc", "kc-7", "--yes"); r.code != ExitUsage || !strings.Contains(r.err, "pod kc-7 is not a member") ||
		!strings.Contains(r.err, "kc-0 ("+inc0+")") {
		t.Fatalf("retire a non-member: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("retire", "kc", "00000000000000aa", "--yes"); r.code != ExitOK || r.out != "incarnation 00000000000000aa is already retired\n" {
		t.Fatalf("retire a retired incarnation: exit %d\n%s", r.code, r.err)
	}

	// --yes by incarnation keeps what the annotation held.
	c := f.makeCluster("kc2")
	c.Annotations = map[string]string{controllers.AnnotationRetire: "ffffffffffffff01"}
	if err := adminCl.Update(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	if r := f.run("retire", "kc2", inc2, "-y"); r.code != ExitOK || f.cluster("kc2").Annotations[controllers.AnnotationRetire] != "ffffffffffffff01,"+inc2 {
		t.Fatalf("retire --yes: exit %d, annotation %q\n%s%s", r.code, f.cluster("kc2").Annotations[controllers.AnnotationRetire], r.out, r.err)
	}
}

func TestBackup(t *testing.T) {
	f := newFixture(t)
	f.makeCluster("kc")
	if r := f.run("backup", "kc"); r.code != ExitUsage || !strings.Contains(r.err, "--claim is required") {
		t.Fatalf("backup without a claim: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("backup", "kc", "--claim", "nope"); r.code != ExitUsage || !strings.Contains(r.err, "PersistentVolumeClaim nope not found") {
		t.Fatalf("backup into a missing claim: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("backup", "kc", "--claim", "backups", "--path", "/abs"); r.code != ExitUsage {
		t.Fatalf("backup --path /abs: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("backup", "gone", "--claim", "backups"); r.code != ExitNotFound {
		t.Fatalf("backup of a missing cluster: exit %d\n%s", r.code, r.err)
	}
	f.pvc("backups")
	r := f.run("backup", "kc", "--claim", "backups", "--name", "first", "--path", "kc/first.kbk")
	if r.code != ExitOK || !strings.Contains(r.out, "kshakabackup/first created: cluster kc into claim backups, file kc/first.kbk") {
		t.Fatalf("backup: exit %d\n%s%s", r.code, r.out, r.err)
	}
	var b kshakav1alpha1.KshakaBackup
	if err := adminCl.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "first"}, &b); err != nil {
		t.Fatal(err)
	}
	if b.Spec.Cluster.Name != "kc" || b.Spec.ClaimName != "backups" || b.Spec.Path != "kc/first.kbk" {
		t.Fatalf("spec %+v", b.Spec)
	}
	if r := f.run("backup", "kc", "--claim", "backups", "--name", "first"); r.code != ExitUsage || !strings.Contains(r.err, "already exists") {
		t.Fatalf("backup with a taken name: exit %d\n%s", r.code, r.err)
	}
	// Without --claim: the newest backup's; the default name.
	if r := f.run("backup", "kc"); r.code != ExitOK || !strings.Contains(r.out, "kshakabackup/kc-20261204020000 created: cluster kc into claim backups, file kc/kc-20261204020000.kbk") {
		t.Fatalf("backup with the defaults: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

// setBackupStatus plays the operator: it writes st into backup name once
// it exists.
func (f *fixture) setBackupStatus(name string, st kshakav1alpha1.KshakaBackupStatus) {
	f.t.Helper()
	var b kshakav1alpha1.KshakaBackup
	eventually(f.t, "KshakaBackup "+name, func() bool {
		return adminCl.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &b) == nil
	})
	b.Status = st
	if err := adminCl.Status().Update(context.Background(), &b); err != nil {
		f.t.Error(err)
	}
}

func TestBackupWait(t *testing.T) {
	f := newFixture(t)
	f.makeCluster("kc")
	f.pvc("backups")

	done := make(chan result)
	go func() { done <- f.run("backup", "kc", "--claim", "backups", "--name", "ok", "--wait") }()
	f.setBackupStatus("ok", kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupRunning,
		Progress: kshakav1alpha1.BackupProgress{Keys: 500, EstimatedKeys: 1000, Percent: 50, Bytes: 2048, KeysPerSecond: 250}})
	f.setBackupStatus("ok", kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupCompleted, Path: "kc/ok.kbk", SHA256: strings.Repeat("ab", 32),
		Progress: kshakav1alpha1.BackupProgress{Keys: 1000, EstimatedKeys: 1000, Percent: 100, Bytes: 4096}})
	r := <-done
	if r.code != ExitOK || !strings.Contains(r.out, "kshakabackup/ok Completed: 1000 keys, 4.0 KiB in claim backups, file kc/ok.kbk, sha256 abab") {
		t.Fatalf("backup --wait: exit %d\n%s%s", r.code, r.out, r.err)
	}

	go func() { done <- f.run("backup", "kc", "--claim", "backups", "--name", "bad", "--wait") }()
	f.setBackupStatus("bad", kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupFailed, JobName: "bad-job", Message: "no quorum: 1 of 3 acceptors answered"})
	if r := <-done; r.code != ExitFailed || !strings.Contains(r.err, "KshakaBackup bad failed: no quorum: 1 of 3 acceptors answered") ||
		!strings.Contains(r.err, "job/bad-job") {
		t.Fatalf("backup --wait of a failing backup: exit %d\n%s%s", r.code, r.out, r.err)
	}

	if r := f.run("backup", "kc", "--claim", "backups", "--name", "slow", "--wait", "--timeout", "100ms"); r.code != ExitTimeout || !strings.Contains(r.err, "it goes on") {
		t.Fatalf("backup --wait --timeout: exit %d\n%s%s", r.code, r.out, r.err)
	}
}

func TestRestore(t *testing.T) {
	f := newFixture(t)
	src := f.makeCluster("kc")
	src.Spec.TLS.ExtraClients = []kshakav1alpha1.ClientName{"billing"}
	src.Spec.Paused = true
	if err := adminCl.Update(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	f.pvc("backups")
	if r := f.run("backup", "kc", "--claim", "backups", "--name", "b1"); r.code != ExitOK {
		t.Fatalf("backup: exit %d\n%s", r.code, r.err)
	}

	if r := f.run("restore", "b1"); r.code != ExitUsage || !strings.Contains(r.err, "--to is required") {
		t.Fatalf("restore without --to: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("restore", "nope", "--to", "x"); r.code != ExitNotFound {
		t.Fatalf("restore of a missing backup: exit %d\n%s", r.code, r.err)
	}
	if r := f.run("restore", "b1", "--to", "kc2"); r.code != ExitUsage || !strings.Contains(r.err, "is Pending, not Completed") {
		t.Fatalf("restore of an incomplete backup: exit %d\n%s", r.code, r.err)
	}
	f.setBackupStatus("b1", kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupCompleted, SHA256: strings.Repeat("cd", 32),
		Progress: kshakav1alpha1.BackupProgress{Keys: 1000, Percent: 100}})
	if r := f.run("restore", "b1", "--to", "kc"); r.code != ExitUsage || !strings.Contains(r.err, "already exists") {
		t.Fatalf("restore into an existing cluster: exit %d\n%s", r.code, r.err)
	}

	// The source's spec, with the flags given over it.
	r := f.run("restore", "b1", "--to", "kc2", "--replicas", "5")
	if r.code != ExitOK || !strings.Contains(r.out, "kshakacluster/kc2 created from backup b1 (1000 keys, sha256 cdcd") || !strings.Contains(r.out, "the spec of kc, 5 replicas") {
		t.Fatalf("restore: exit %d\n%s%s", r.code, r.out, r.err)
	}
	nc := f.cluster("kc2")
	var st Status
	if r := f.run("status", "kc2", "-o", "json"); json.Unmarshal([]byte(r.out), &st) != nil || st.Restore == nil || st.Restore.Phase != "Pending" || st.Restore.Backup != "b1" {
		t.Fatalf("status of the new cluster: %+v\n%s", st.Restore, r.err)
	}
	if nc.Spec.Replicas != 5 || nc.Spec.Paused || !slices.Equal(nc.Spec.TLS.ExtraClients, src.Spec.TLS.ExtraClients) ||
		nc.Spec.Bootstrap == nil || nc.Spec.Bootstrap.FromBackup == nil || nc.Spec.Bootstrap.FromBackup.BackupName != "b1" {
		t.Fatalf("restored spec %+v", nc.Spec)
	}

	// --wait follows the restore to Restored.
	done := make(chan result)
	go func() { done <- f.run("restore", "b1", "--to", "kc3", "--wait") }()
	var c kshakav1alpha1.KshakaCluster
	eventually(t, "kc3", func() bool {
		return adminCl.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: "kc3"}, &c) == nil
	})
	c.Status.Restore = &kshakav1alpha1.RestoreStatus{Phase: kshakav1alpha1.BackupRunning, Progress: kshakav1alpha1.BackupProgress{Keys: 10, EstimatedKeys: 1000, Percent: 1}}
	if err := adminCl.Status().Update(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	c.Status.Restore = &kshakav1alpha1.RestoreStatus{Phase: kshakav1alpha1.BackupCompleted, Progress: kshakav1alpha1.BackupProgress{Keys: 1000, EstimatedKeys: 1000, Percent: 100}}
	c.Status.Conditions = []metav1.Condition{{Type: kshakav1alpha1.ConditionRestored, Status: metav1.ConditionTrue, Reason: "Restored", LastTransitionTime: metav1.NewTime(now)}}
	if err := adminCl.Status().Update(context.Background(), &c); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.code != ExitOK || !strings.Contains(r.out, "kshakacluster/kc3 Restored: 1000 keys") {
		t.Fatalf("restore --wait: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := f.run("status", "kc3"); !regexp.MustCompile(`Restore: +Completed from backup b1: 1000 keys of 1000 \(100%\)`).MatchString(r.out) {
		t.Fatalf("status of the restored cluster:\n%s", r.out)
	}

	// The source is gone: the defaults; an explicit missing source is an error.
	if r := f.run("restore", "b1", "--to", "kc4", "--from-cluster", "gone"); r.code != ExitNotFound {
		t.Fatalf("restore --from-cluster gone: exit %d\n%s", r.code, r.err)
	}
	if err := adminCl.Delete(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	eventually(t, "kc to be deleted", func() bool {
		return adminCl.Get(context.Background(), client.ObjectKeyFromObject(src), &kshakav1alpha1.KshakaCluster{}) != nil
	})
	if r := f.run("restore", "b1", "--to", "kc4", "--storage-size", "2Gi"); r.code != ExitOK || !strings.Contains(r.err, "no longer exists") {
		t.Fatalf("restore without a source: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if c := f.cluster("kc4"); c.Spec.Replicas != 3 || c.Spec.Storage.Size.String() != "2Gi" || len(c.Spec.TLS.ExtraClients) != 0 {
		t.Fatalf("spec from the defaults %+v", c.Spec)
	}
	if r := f.run("restore", "b1", "--to", "kc5", "--storage-size", "-1"); r.code != ExitUsage {
		t.Fatalf("restore --storage-size -1: exit %d\n%s", r.code, r.err)
	}
}

const secretData = "TOP-SECRET-VALUE"

func TestReport(t *testing.T) {
	f := newFixture(t)
	c := f.makeCluster("kc")
	f.event("kc.1", corev1.EventTypeWarning, "KshakaCluster", "kc", "MembershipChangeBlocked", "blocked", time.Minute)
	f.event("kc.2", corev1.EventTypeNormal, "KshakaCluster", "kc", "JointInstalled", "installed epoch 6", 2*time.Minute)
	lbl := controllers.Labels(c)
	for _, name := range []string{"kc-0", "kc-1"} {
		f.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name, Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "acceptor", Image: "kshaka-acceptor"}}}})
	}
	f.create(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "kc", Labels: lbl},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "grpc", Port: 7400}}}})
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "kc-client-tls", Labels: lbl},
		Data: map[string][]byte{"tls.key": []byte(secretData)}})
	f.create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "kc-ca", Labels: lbl},
		StringData: map[string]string{"ca.key": secretData}})
	opNS := "kshaka-system-" + f.ns
	f.create(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: opNS}})
	f.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: opNS, Name: "kshaka-operator-abc",
		Labels: map[string]string{"app.kubernetes.io/name": "kshaka-operator"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "manager", Image: "kshaka-operator"}}}})

	out := filepath.Join(t.TempDir(), "r.zip")
	r := f.run("report", "kc", "--out", out, "--operator-namespace", opNS)
	if r.code != ExitOK || !strings.HasPrefix(r.out, "wrote "+out+" (") || strings.Contains(r.out, "listed in report.txt") {
		t.Fatalf("report: exit %d\n%s%s", r.code, r.out, r.err)
	}
	files := readZip(t, out)
	for _, want := range []string{"kshakacluster.yaml", "status.txt", "status.json", "events.yaml", "events.txt", "kshakabackups.yaml",
		"statefulset.yaml", "services.yaml", "pvcs.yaml", "poddisruptionbudgets.yaml", "networkpolicies.yaml",
		"pods/kc-0.yaml", "pods/kc-1.yaml", "logs/kc-0/acceptor.log", "logs/kc-1/acceptor.log",
		"operator/deployments.yaml", "operator/logs/kshaka-operator-abc/manager.log", "operator/pods/kshaka-operator-abc.yaml", "secrets.txt", "report.txt"} {
		if _, ok := files["r/"+want]; !ok {
			t.Errorf("the report lacks %s; it has %v", want, keys(files))
		}
	}
	for name, b := range files {
		for _, bad := range []string{secretData, base64.StdEncoding.EncodeToString([]byte(secretData))} {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("%s holds Secret data", name)
			}
		}
	}
	if s := string(files["r/secrets.txt"]); !strings.Contains(s, "kc-client-tls") || !strings.Contains(s, "kc-ca") {
		t.Errorf("secrets.txt lacks the Secrets' names:\n%s", s)
	}
	var s Status
	if err := json.Unmarshal(files["r/status.json"], &s); err != nil || s.Quorum.Epoch != 6 || len(s.Events) != 1 {
		t.Errorf("status.json: %v %+v", err, s)
	}
	var kc kshakav1alpha1.KshakaCluster
	if err := yaml.Unmarshal(files["r/kshakacluster.yaml"], &kc); err != nil || kc.Kind != "KshakaCluster" || kc.Status.Configuration.Epoch != 6 || kc.ManagedFields != nil {
		t.Errorf("kshakacluster.yaml: %v %s %+v", err, kc.Kind, kc.ManagedFields)
	}
	if ev := string(files["r/events.txt"]); !strings.Contains(ev, "JointInstalled") || strings.Index(ev, "JointInstalled") > strings.Index(ev, "MembershipChangeBlocked") {
		t.Errorf("events.txt, oldest first:\n%s", ev)
	}
	if rep := string(files["r/report.txt"]); !strings.Contains(rep, "KshakaCluster "+f.ns+"/kc (uid") || !strings.Contains(rep, "Everything was collected.") ||
		!strings.Contains(rep, "Secrets are listed by name only") {
		t.Errorf("report.txt:\n%s", rep)
	}

	// What cannot be collected is listed, and the rest is still written.
	out2 := filepath.Join(t.TempDir(), "r2.zip")
	if r := f.run("report", "kc", "--out", out2, "--operator-namespace", "nowhere"); r.code != ExitOK || !strings.Contains(r.out, "1 item could not be collected, listed in report.txt") {
		t.Fatalf("report without an operator: exit %d\n%s%s", r.code, r.out, r.err)
	}
	files2 := readZip(t, out2)
	if rep := string(files2["r2/report.txt"]); !strings.Contains(rep, "no operator pod in namespace nowhere matches app.kubernetes.io/name=kshaka-operator") {
		t.Errorf("report.txt:\n%s", rep)
	}
	if _, ok := files2["r2/pods/kc-0.yaml"]; !ok {
		t.Errorf("the report without an operator lacks the pods: %v", keys(files2))
	}

	// An existing file is never overwritten.
	before, _ := os.ReadFile(out)
	if r := f.run("report", "kc", "--out", out); r.code != ExitUsage || !strings.Contains(r.err, "exists") {
		t.Fatalf("report over an existing file: exit %d\n%s", r.code, r.err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatal("the existing report changed")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*.tmp")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func readZip(t *testing.T, path string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = zr.Close() }()
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = b
	}
	return out
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"status", "--help"}, {"backup", "--help"}, {"restore", "--help"},
		{"retire", "--help"}, {"pause", "--help"}, {"resume", "--help"}, {"report", "--help"}, {"version", "--help"}} {
		var out, errw bytes.Buffer
		code := run(context.Background(), args, &options{io: IO{In: strings.NewReader(""), Out: &out, Err: &errw}, now: time.Now, pollEvery: time.Second})
		if code != ExitOK || !strings.Contains(out.String(), "Usage:") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out.String(), errw.String())
		}
		if len(args) == 1 && !strings.Contains(out.String(), "Exit codes:") {
			t.Fatalf("--help lacks the exit codes:\n%s", out.String())
		}
		if len(args) == 2 && args[0] != "version" && !strings.Contains(out.String(), "Examples:") {
			t.Fatalf("%v lacks examples:\n%s", args, out.String())
		}
		if strings.Contains(out.String(), "--kubeconfig") == false {
			t.Fatalf("%v lacks the kubeconfig flags:\n%s", args, out.String())
		}
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &options{io: IO{Out: &out, Err: &out}}); code != ExitOK || !strings.HasPrefix(out.String(), "kubectl-kshaka ") {
		t.Fatalf("version: exit %d %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"nope"}, &options{io: IO{Out: &out, Err: &out}}); code != ExitUsage || !strings.Contains(out.String(), "Run 'kubectl kshaka --help' for usage.") {
		t.Fatalf("an unknown command: exit %d %q", code, out.String())
	}
}
