package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// envtest runs no job controller and no kubelet for Jobs: the tests play
// both, creating the Job's pod, writing its log (fakeLogs) and setting the
// Job's status conditions through the API, as the job controller does.

// fakeLogs are the pods' logs, by pod name.
type fakeLogs struct {
	mu   sync.Mutex
	logs map[string]string
}

func (l *fakeLogs) set(pod, log string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.logs == nil {
		l.logs = map[string]string{}
	}
	l.logs[pod] = log
}

func (l *fakeLogs) Tail(_ context.Context, ns, pod, _ string, _ int64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.logs[pod]
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("pods/log"), pod)
	}
	return []byte(s), nil
}

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// startBackupOperator runs the KshakaBackup reconciler (logs not nil) and
// the KshakaScheduledBackup reconciler (now not nil) in a manager of their
// own.
func startBackupOperator(t *testing.T, cfg *rest.Config, ns string, logs PodLogs, now func() time.Time) {
	t.Helper()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}},
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if logs != nil {
		br := &BackupReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Logs: logs, PollInterval: 100 * time.Millisecond}
		if err := br.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	if now != nil {
		sr := &ScheduledBackupReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Now: now}
		if err := sr.SetupWithManager(mgr); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// poll waits until cond holds, failing with its last word after timeout.
func poll(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *fixture) backup(name string) *kshakav1alpha1.KshakaBackup {
	f.t.Helper()
	var b kshakav1alpha1.KshakaBackup
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &b); err != nil {
		f.t.Fatalf("reading KshakaBackup %s: %v", name, err)
	}
	return &b
}

func (f *fixture) waitBackup(name, what string, cond func(b *kshakav1alpha1.KshakaBackup) bool) *kshakav1alpha1.KshakaBackup {
	f.t.Helper()
	var b *kshakav1alpha1.KshakaBackup
	poll(f.t, 30*time.Second, "KshakaBackup "+name+": "+what, func() (bool, string) {
		b = f.backup(name)
		return cond(b), fmt.Sprintf("%+v", b.Status)
	})
	return b
}

func (f *fixture) waitJob(name string) *batchv1.Job {
	f.t.Helper()
	var j batchv1.Job
	poll(f.t, 30*time.Second, "Job "+name, func() (bool, string) {
		err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &j)
		return err == nil, fmt.Sprint(err)
	})
	return &j
}

// runJobPod plays the job controller and the kubelet: the Job's pod,
// started, with log as its output so far.
func (f *fixture) runJobPod(j *batchv1.Job, logs *fakeLogs, log string) {
	f.t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-x1", Namespace: f.ns, Labels: map[string]string{}},
		Spec:       *j.Spec.Template.Spec.DeepCopy(),
	}
	for k, v := range j.Spec.Template.Labels {
		pod.Labels[k] = v
	}
	pod.Labels[batchv1.ControllerUidLabel] = string(j.UID)
	logs.set(pod.Name, log)
	if err := f.c.Create(context.Background(), pod); err != nil && !apierrors.IsAlreadyExists(err) {
		f.t.Fatal(err)
	}
	j.Status.StartTime = ptr.To(metav1.Now())
	j.Status.Active = 1
	if err := f.c.Status().Update(context.Background(), j); err != nil {
		f.t.Fatalf("starting Job %s: %v", j.Name, err)
	}
}

// finishJob sets the Job's final conditions, as the job controller does.
func (f *fixture) finishJob(name string, ok bool) {
	f.t.Helper()
	var j batchv1.Job
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &j); err != nil {
		f.t.Fatal(err)
	}
	now := metav1.Now()
	j.Status.Active = 0
	if ok {
		j.Status.Succeeded = 1
		j.Status.CompletionTime = &now
		j.Status.Conditions = append(j.Status.Conditions,
			batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now},
			batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached", LastTransitionTime: now})
	} else {
		j.Status.Failed = 1
		j.Status.Conditions = append(j.Status.Conditions,
			batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now},
			batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit", LastTransitionTime: now})
	}
	if err := f.c.Status().Update(context.Background(), &j); err != nil {
		f.t.Fatalf("finishing Job %s: %v", name, err)
	}
}

func newBackupObject(ns, name, cluster string) *kshakav1alpha1.KshakaBackup {
	return &kshakav1alpha1.KshakaBackup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       kshakav1alpha1.KshakaBackupSpec{Cluster: corev1.LocalObjectReference{Name: cluster}, ClaimName: "backups"},
	}
}

const testSHA = "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"

// TestEnvtestBackup: a KshakaBackup waits for its cluster, then gets one
// Job with the cluster's image, members and admin identity; its status
// follows the Job's log (progress) and conditions (Completed with the
// checksum, Failed with the error line).
func TestEnvtestBackup(t *testing.T) {
	f := newFixture(t, 3)
	logs := &fakeLogs{}
	startBackupOperator(t, f.cfg, f.ns, logs, nil)
	ctx := context.Background()

	// A backup of a cluster that does not exist waits, with no Job.
	if err := f.c.Create(ctx, newBackupObject(f.ns, "orphan", "nope")); err != nil {
		t.Fatal(err)
	}
	f.waitBackup("orphan", "pending", func(b *kshakav1alpha1.KshakaBackup) bool {
		return b.Status.Phase == kshakav1alpha1.BackupPending && strings.Contains(b.Status.Message, "KshakaCluster nope to exist")
	})

	// Created before the cluster is Available: the Job waits for it.
	if err := f.c.Create(ctx, newBackupObject(f.ns, "b1", "kc")); err != nil {
		t.Fatal(err)
	}
	cfg := f.waitConverged()
	want := map[string][]byte{}
	f.write(cfg, "k", 3, want)
	j := f.waitJob("b1-backup")
	kc := f.get()
	if !metav1.IsControlledBy(j, f.backup("b1")) {
		t.Errorf("Job owners %+v", j.OwnerReferences)
	}
	ctr := j.Spec.Template.Spec.Containers[0]
	var eps []string
	for _, m := range cfg.Members {
		eps = append(eps, m.Addr)
	}
	if ctr.Image != Image(kc) || !slices.Contains(ctr.Command, "--endpoints="+strings.Join(eps, ",")) || ctr.Command[0] != CLIPath || ctr.Command[1] != "backup" {
		t.Errorf("container image %s command %q; want the cluster's image and members %v", ctr.Image, ctr.Command, eps)
	}
	var secret string
	for _, v := range j.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			secret = v.Secret.SecretName
		}
	}
	if secret != OperatorTLSSecretName(kc) {
		t.Errorf("the Job mounts Secret %q, want the operator's admin certificate", secret)
	}

	f.runJobPod(j, logs, `{"phase":"listing","keys":0,"estimatedKeys":3}
{"phase":"reading","keys":2,"estimatedKeys":3,"bytes":40,"percent":66.7,"keysPerSecond":12}
`)
	b := f.waitBackup("b1", "running with progress", func(b *kshakav1alpha1.KshakaBackup) bool {
		return b.Status.Phase == kshakav1alpha1.BackupRunning && b.Status.Progress.Keys == 2
	})
	if b.Status.Progress.Percent != 66 || b.Status.StartedAt == nil || b.Status.Path != "kc/b1.kbk" || b.Status.JobName != "b1-backup" {
		t.Errorf("running status %+v", b.Status)
	}
	logs.set(j.Name+"-x1", `{"phase":"reading","keys":2,"estimatedKeys":3}
{"phase":"done","keys":3,"estimatedKeys":3,"bytes":60,"percent":100,"sha256":"`+testSHA+`","path":"/backup/b1.kbk"}
backed up 3 keys
`)
	f.finishJob(j.Name, true)
	b = f.waitBackup("b1", "completed", func(b *kshakav1alpha1.KshakaBackup) bool {
		return b.Status.Phase == kshakav1alpha1.BackupCompleted
	})
	if b.Status.SHA256 != testSHA || b.Status.Progress.Keys != 3 || b.Status.CompletedAt == nil ||
		!meta.IsStatusConditionTrue(b.Status.Conditions, ConditionBackupCompleted) {
		t.Errorf("completed status %+v", b.Status)
	}

	// A failed Job: the error line is the message.
	if err := f.c.Create(ctx, newBackupObject(f.ns, "b2", "kc")); err != nil {
		t.Fatal(err)
	}
	j2 := f.waitJob("b2-backup")
	f.runJobPod(j2, logs, `{"phase":"failed","keys":1,"error":"while listing keys: permission denied: the certificate lacks the admin role"}`+"\n")
	f.finishJob(j2.Name, false)
	b = f.waitBackup("b2", "failed", func(b *kshakav1alpha1.KshakaBackup) bool { return b.Status.Phase == kshakav1alpha1.BackupFailed })
	if !strings.Contains(b.Status.Message, "lacks the admin role") || !strings.Contains(b.Status.Message, "kubectl logs job/b2-backup") {
		t.Errorf("failed message %q", b.Status.Message)
	}
	// Final: no new Job, the status stays.
	if c := meta.FindStatusCondition(b.Status.Conditions, ConditionBackupCompleted); c == nil || c.Status != metav1.ConditionFalse || c.Reason != string(kshakav1alpha1.BackupFailed) {
		t.Errorf("condition %+v", c)
	}
}

func newScheduleObject(ns, name, schedule string) *kshakav1alpha1.KshakaScheduledBackup {
	return &kshakav1alpha1.KshakaScheduledBackup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kshakav1alpha1.KshakaScheduledBackupSpec{
			Schedule: schedule, Cluster: corev1.LocalObjectReference{Name: "kc"}, ClaimName: "backups",
			SuccessfulBackupsHistoryLimit: ptr.To[int32](1),
		},
	}
}

// TestEnvtestScheduledBackup: backups are created at the schedule's times
// (an injected clock), named after them, pruned beyond the history limit;
// an invalid schedule is refused with Ready=False.
func TestEnvtestScheduledBackup(t *testing.T) {
	cfg, c := startEnv(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	clock := &testClock{now: time.Now().UTC()}
	// The schedule alone: the test plays the backups' phases.
	startBackupOperator(t, cfg, ns, nil, clock.Now)
	kc := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: "kc", Namespace: ns}, Spec: kshakav1alpha1.KshakaClusterSpec{Replicas: 1}}
	if err := c.Create(ctx, kc); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, ns: ns}
	getSchedule := func(name string) *kshakav1alpha1.KshakaScheduledBackup {
		var s kshakav1alpha1.KshakaScheduledBackup
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	// touch makes the reconciler look again (the clock moved).
	touch := func(name string) {
		s := getSchedule(name)
		patch := client.MergeFrom(s.DeepCopy())
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations["test/touch"] = clock.Now().Format(time.RFC3339Nano)
		if err := c.Patch(ctx, s, patch); err != nil {
			t.Fatal(err)
		}
	}
	backups := func() []string {
		var list kshakav1alpha1.KshakaBackupList
		if err := c.List(ctx, &list, client.InNamespace(ns), client.MatchingLabels{LabelScheduledBackup: "hourly"}); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range list.Items {
			if b.DeletionTimestamp.IsZero() {
				out = append(out, b.Name)
			}
		}
		slices.Sort(out)
		return out
	}

	bad := newScheduleObject(ns, "bad", "every day at 3")
	if err := c.Create(ctx, bad); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "the invalid schedule refused", func() (bool, string) {
		s := getSchedule("bad")
		cond := meta.FindStatusCondition(s.Status.Conditions, kshakav1alpha1.ConditionReady)
		return cond != nil && cond.Status == metav1.ConditionFalse && cond.Reason == ReasonInvalidSchedule &&
			strings.Contains(cond.Message, "every day at 3") && s.Status.NextScheduleTime == nil, fmt.Sprintf("%+v", s.Status)
	})

	if err := c.Create(ctx, newScheduleObject(ns, "hourly", "@hourly")); err != nil {
		t.Fatal(err)
	}
	created := getSchedule("hourly").CreationTimestamp.UTC()
	next := created.Truncate(time.Hour).Add(time.Hour)
	poll(t, 30*time.Second, "the next run's time", func() (bool, string) {
		s := getSchedule("hourly")
		return s.Status.NextScheduleTime != nil && s.Status.NextScheduleTime.UTC().Equal(next) &&
			meta.IsStatusConditionTrue(s.Status.Conditions, kshakav1alpha1.ConditionReady), fmt.Sprintf("%+v", s.Status)
	})
	if got := backups(); len(got) != 0 {
		t.Fatalf("backups before the first run: %v", got)
	}

	// The clock reaches the run: one backup, named after its time.
	first := ScheduledBackupName(getSchedule("hourly"), next)
	clock.set(next.Add(30 * time.Second))
	touch("hourly")
	poll(t, 30*time.Second, "the first scheduled backup", func() (bool, string) {
		got := backups()
		return slices.Equal(got, []string{first}), fmt.Sprint(got)
	})
	b := f.backup(first)
	if b.Spec.Path != "kc/"+first+".kbk" || b.Spec.ClaimName != "backups" || !metav1.IsControlledBy(b, getSchedule("hourly")) {
		t.Errorf("scheduled backup %+v", b)
	}
	// It runs: the next run waits for it, then is taken.
	b.Status.Phase = kshakav1alpha1.BackupRunning
	if err := c.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	clock.set(next.Add(time.Hour + time.Minute))
	touch("hourly")
	poll(t, 30*time.Second, "the due run waiting", func() (bool, string) {
		s := getSchedule("hourly")
		cond := meta.FindStatusCondition(s.Status.Conditions, kshakav1alpha1.ConditionReady)
		return cond != nil && strings.Contains(cond.Message, "waits for KshakaBackup "+first), fmt.Sprintf("%+v", cond)
	})
	if got := backups(); len(got) != 1 {
		t.Fatalf("a second backup while the first runs: %v", got)
	}
	b = f.backup(first)
	b.Status.Phase, b.Status.SHA256 = kshakav1alpha1.BackupCompleted, testSHA
	if err := c.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	second := ScheduledBackupName(getSchedule("hourly"), next.Add(time.Hour))
	poll(t, 30*time.Second, "the second scheduled backup", func() (bool, string) {
		got := backups()
		return slices.Equal(got, []string{first, second}), fmt.Sprint(got)
	})
	s := getSchedule("hourly")
	if s.Status.LastBackupName != second || s.Status.LastSuccessfulBackupName != first || !s.Status.LastScheduleTime.UTC().Equal(next.Add(time.Hour)) {
		t.Errorf("status %+v", s.Status)
	}
	// The second completes: with a history limit of 1 the first goes.
	b = f.backup(second)
	b.Status.Phase, b.Status.SHA256 = kshakav1alpha1.BackupCompleted, testSHA
	if err := c.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	poll(t, 30*time.Second, "the first backup pruned", func() (bool, string) {
		got := backups()
		return slices.Equal(got, []string{second}), fmt.Sprint(got)
	})

	// Suspended: the clock passes a run, nothing is created.
	s = getSchedule("hourly")
	patch := client.MergeFrom(s.DeepCopy())
	s.Spec.Suspend = true
	if err := c.Patch(ctx, s, patch); err != nil {
		t.Fatal(err)
	}
	clock.set(next.Add(2*time.Hour + time.Minute))
	touch("hourly")
	poll(t, 30*time.Second, "suspended", func() (bool, string) {
		cond := meta.FindStatusCondition(getSchedule("hourly").Status.Conditions, kshakav1alpha1.ConditionReady)
		return cond != nil && cond.Reason == ReasonSuspended, fmt.Sprintf("%+v", cond)
	})
	if got := backups(); !slices.Equal(got, []string{second}) {
		t.Errorf("backups while suspended: %v", got)
	}
}

// TestEnvtestBootstrapFromBackup: a cluster bootstrapping from a backup
// comes up, waits (Restored=False, no Job, no client Secret) until the
// KshakaBackup is Completed, then runs one restore Job; Restored follows
// the Job, and the client Secret is issued after it.
func TestEnvtestBootstrapFromBackup(t *testing.T) {
	logs := &fakeLogs{}
	f := newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.Bootstrap = &kshakav1alpha1.BootstrapSpec{FromBackup: &kshakav1alpha1.BackupSource{BackupName: "old"}}
	}, func(r *Reconciler) { r.Logs = logs })
	ctx := context.Background()
	restored := func(kc *kshakav1alpha1.KshakaCluster) *metav1.Condition {
		return meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionRestored)
	}
	f.eventually(30*time.Second, "waiting for the backup to exist", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := restored(kc)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == ReasonWaitingForBackup && strings.Contains(c.Message, "KshakaBackup old to exist")
	})
	f.waitConverged()

	// The backup exists but still runs: still no Job.
	b := newBackupObject(f.ns, "old", "gone")
	if err := f.c.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	b.Status = kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupRunning, Path: "gone/old.kbk"}
	if err := f.c.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	f.eventually(30*time.Second, "waiting for the backup to complete", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := restored(kc)
		return c != nil && strings.Contains(c.Message, "to complete (it is Running)")
	})
	noJob := func() {
		t.Helper()
		var j batchv1.Job
		if err := f.c.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "kc-restore"}, &j); !apierrors.IsNotFound(err) {
			t.Fatalf("restore Job before the backup completed: %v", err)
		}
	}
	noJob()
	var sec corev1.Secret
	if err := f.c.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "kc-client-tls"}, &sec); !apierrors.IsNotFound(err) {
		t.Fatalf("the client Secret exists before the restore: %v", err)
	}
	if err := f.c.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "kc-operator-tls"}, &sec); err != nil {
		t.Fatalf("the operator's Secret, which the restore Job mounts: %v", err)
	}

	// Completed: first the file's checksum is verified, with no
	// certificate mounted...
	b.Status = kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupCompleted, Path: "gone/old.kbk", SHA256: testSHA}
	if err := f.c.Status().Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	v := f.waitJob("kc-restore-verify")
	if args := strings.Join(v.Spec.Template.Spec.Containers[0].Command, " "); !strings.Contains(args, "restore --verify-only --from=/backup/old.kbk") {
		t.Errorf("verify Job command %s", args)
	}
	f.runJobPod(v, logs, `{"phase":"verifying","keys":2}`+"\n")
	f.eventually(30*time.Second, "verifying", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return kc.Status.Restore != nil && strings.Contains(kc.Status.Restore.Message, "verifying backups/gone/old.kbk")
	})
	noJob()
	logs.set(v.Name+"-x1", `{"phase":"done","keys":3,"sha256":"`+testSHA+`"}`+"\n")
	f.finishJob(v.Name, true)
	// ...then one restore Job, from the backup's claim and path.
	j := f.waitJob("kc-restore")
	kc := f.get()
	if !metav1.IsControlledBy(j, kc) || kc.Status.Restore == nil || kc.Status.Restore.Source != "backups/gone/old.kbk" {
		t.Fatalf("Job owners %+v restore status %+v", j.OwnerReferences, kc.Status.Restore)
	}
	ctr := j.Spec.Template.Spec.Containers[0]
	if ctr.Command[1] != "restore" || ctr.Command[2] != "--from=/backup/old.kbk" || !ctr.VolumeMounts[0].ReadOnly || ctr.VolumeMounts[0].SubPath != "gone" {
		t.Errorf("restore container %q mounts %+v", ctr.Command, ctr.VolumeMounts)
	}
	f.runJobPod(j, logs, `{"phase":"verifying","keys":1}
{"phase":"restoring","keys":2,"estimatedKeys":3,"percent":66}
`)
	f.eventually(30*time.Second, "restore progress", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return kc.Status.Restore != nil && kc.Status.Restore.Phase == kshakav1alpha1.BackupRunning && kc.Status.Restore.Progress.Keys == 2
	})
	if c := restored(f.get()); c.Status != metav1.ConditionFalse || c.Reason != ReasonRestoring {
		t.Errorf("Restored while running: %+v", c)
	}
	logs.set(j.Name+"-x1", `{"phase":"done","keys":3,"bytes":60,"percent":100,"sha256":"`+testSHA+`"}`+"\n")
	f.finishJob(j.Name, true)
	kc = f.eventually(30*time.Second, "Restored", func(kc *kshakav1alpha1.KshakaCluster) bool {
		return meta.IsStatusConditionTrue(kc.Status.Conditions, kshakav1alpha1.ConditionRestored)
	})
	if kc.Status.Restore.Phase != kshakav1alpha1.BackupCompleted || kc.Status.Restore.Progress.Keys != 3 || kc.Status.Restore.CompletedAt == nil {
		t.Errorf("restore status %+v", kc.Status.Restore)
	}
	poll(t, 30*time.Second, "the client Secret after the restore", func() (bool, string) {
		err := f.c.Get(ctx, types.NamespacedName{Namespace: f.ns, Name: "kc-client-tls"}, &sec)
		return err == nil, fmt.Sprint(err)
	})
}

// TestEnvtestBackupSamples: the samples of config/samples are accepted by
// the API server (the CRDs' schemas and rules), dry-run.
func TestEnvtestBackupSamples(t *testing.T) {
	_, c := startEnv(t)
	ns := newNamespace(t, c)
	for _, f := range []string{"kshaka_v1alpha1_kshakabackup.yaml", "kshaka_v1alpha1_kshakascheduledbackup.yaml", "kshaka_v1alpha1_kshakacluster_restore.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "config", "samples", f))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(b), "\n---\n") {
			var u unstructured.Unstructured
			if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			u.SetNamespace(ns)
			if err := c.Create(context.Background(), &u, client.DryRunAll); err != nil {
				t.Errorf("%s: %s %s: %v", f, u.GetKind(), u.GetName(), err)
			}
		}
	}
}
