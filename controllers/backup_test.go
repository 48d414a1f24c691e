package controllers

import (
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

func availableCluster() *kshakav1alpha1.KshakaCluster {
	c := newCluster(3)
	c.Status.Configuration = &kshakav1alpha1.Configuration{Epoch: 1, Members: []kshakav1alpha1.ConfigMember{
		{ID: "kc-0", Address: "10.0.0.1:7400"}, {ID: "kc-1", Address: "10.0.0.2:7400"}, {ID: "kc-2", Address: "10.0.0.3:7400"},
	}}
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "Quorum"})
	meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionTLSReady, Status: metav1.ConditionTrue, Reason: ReasonCertificatesValid})
	return c
}

func newBackup(name string) *kshakav1alpha1.KshakaBackup {
	return &kshakav1alpha1.KshakaBackup{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-b"},
		Spec:       kshakav1alpha1.KshakaBackupSpec{Cluster: corev1.LocalObjectReference{Name: "kc"}, ClaimName: "backups"},
	}
}

func TestBackupJob(t *testing.T) {
	c := availableCluster()
	c.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	b := newBackup("nightly")
	j := BackupJob(b, c)
	if j.Name != "nightly-backup" || j.Namespace != "ns" || !metav1.IsControlledBy(j, b) {
		t.Fatalf("job %s/%s owners %+v", j.Namespace, j.Name, j.OwnerReferences)
	}
	if *j.Spec.BackoffLimit != 0 || j.Spec.TTLSecondsAfterFinished != nil {
		t.Errorf("backoffLimit %d ttl %v: want one attempt, kept", *j.Spec.BackoffLimit, j.Spec.TTLSecondsAfterFinished)
	}
	pod := j.Spec.Template.Spec
	if pod.RestartPolicy != corev1.RestartPolicyNever || !*pod.SecurityContext.RunAsNonRoot || *pod.AutomountServiceAccountToken {
		t.Errorf("pod spec %+v", pod)
	}
	if j.Spec.Template.Labels[LabelManagedBy] != managerName || j.Spec.Template.Labels[LabelComponent] != ComponentBackup {
		t.Errorf("pod labels %v: the operator's cache selects managed-by, the NetworkPolicy the component", j.Spec.Template.Labels)
	}
	ctr := pod.Containers[0]
	if ctr.Image != "example.com/kshaka-acceptor:v1" || !slices.Equal(pod.ImagePullSecrets, c.Spec.ImagePullSecrets) {
		t.Errorf("image %s pull secrets %v: want the cluster's", ctr.Image, pod.ImagePullSecrets)
	}
	if !*ctr.SecurityContext.ReadOnlyRootFilesystem || *ctr.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v", ctr.SecurityContext)
	}
	want := []string{"/kshaka", "backup", "--out=/backup/nightly.kbk", "--cluster-name=ns/kc",
		"--endpoints=10.0.0.1:7400,10.0.0.2:7400,10.0.0.3:7400", "--timeout=" + JobTimeout, "--progress=json",
		"--cacert=" + JobTLSMountPath + "/ca.crt", "--cert=" + JobTLSMountPath + "/tls.crt", "--key=" + JobTLSMountPath + "/tls.key"}
	if !slices.Equal(ctr.Command, want) {
		t.Errorf("command\n%q\nwant\n%q", ctr.Command, want)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.Name] = m
	}
	if m := mounts[backupVolume]; m.MountPath != BackupMountPath || m.SubPath != "kc" || m.ReadOnly {
		t.Errorf("backup mount %+v: want the file's directory kc/ of the claim, writable", m)
	}
	if m := mounts[tlsVolume]; m.MountPath != JobTLSMountPath || !m.ReadOnly {
		t.Errorf("tls mount %+v", m)
	}
	for _, v := range pod.Volumes {
		switch v.Name {
		case backupVolume:
			if v.PersistentVolumeClaim.ClaimName != "backups" {
				t.Errorf("claim %+v", v)
			}
		case tlsVolume:
			// The admin identity: only the operator and these Jobs mount it.
			if v.Secret.SecretName != "kc-operator-tls" {
				t.Errorf("tls secret %s, want the operator's admin certificate", v.Secret.SecretName)
			}
		}
	}

	b.Spec.Path = "top.kbk"
	if m := BackupJob(b, c).Spec.Template.Spec.Containers[0].VolumeMounts[0]; m.SubPath != "" {
		t.Errorf("a file at the claim's root mounts the whole claim, got subPath %q", m.SubPath)
	}
	c.Spec.TLS.Mode = kshakav1alpha1.TLSModeDisabled
	for _, a := range BackupJob(b, c).Spec.Template.Spec.Containers[0].Command {
		if strings.HasPrefix(a, "--cert") {
			t.Errorf("TLS disabled, but %s", a)
		}
	}
	if len(BackupJob(b, c).Spec.Template.Spec.Volumes) != 2 {
		t.Errorf("TLS disabled: no Secret is mounted")
	}
}

func TestRestoreJob(t *testing.T) {
	c := availableCluster()
	j := RestoreJob(c, "backups", "old/nightly.kbk")
	if j.Name != "kc-restore" || !metav1.IsControlledBy(j, c) {
		t.Fatalf("job %s owners %+v", j.Name, j.OwnerReferences)
	}
	ctr := j.Spec.Template.Spec.Containers[0]
	if ctr.Command[1] != "restore" || ctr.Command[2] != "--from=/backup/nightly.kbk" {
		t.Errorf("command %q", ctr.Command)
	}
	v := VerifyJob(c, "backups", "old/nightly.kbk")
	if want := []string{"/kshaka", "restore", "--verify-only", "--from=/backup/nightly.kbk", "--progress=json"}; v.Name != "kc-restore-verify" ||
		!slices.Equal(v.Spec.Template.Spec.Containers[0].Command, want) || !metav1.IsControlledBy(v, c) {
		t.Errorf("verify Job %s: %q", v.Name, v.Spec.Template.Spec.Containers[0].Command)
	}
	for _, vol := range v.Spec.Template.Spec.Volumes {
		if vol.Secret != nil {
			t.Errorf("the verify Job mounts Secret %s; it talks to no acceptor", vol.Secret.SecretName)
		}
	}
	if m := ctr.VolumeMounts[0]; m.SubPath != "old" || !m.ReadOnly || !j.Spec.Template.Spec.Volumes[0].PersistentVolumeClaim.ReadOnly {
		t.Errorf("mount %+v: want the claim read-only", m)
	}
	if j.Spec.Template.Labels[LabelComponent] != ComponentRestore {
		t.Errorf("labels %v", j.Spec.Template.Labels)
	}
}

func TestBackupPath(t *testing.T) {
	b := newBackup("b1")
	if p := BackupPath(b); p != "kc/b1.kbk" {
		t.Errorf("default path %q", p)
	}
	b.Spec.Path = "x//y/./z.kbk"
	if p := BackupPath(b); p != "x/y/z.kbk" {
		t.Errorf("path %q", p)
	}
}

func TestParseProgress(t *testing.T) {
	log := `{"phase":"listing","keys":0,"estimatedKeys":1000,"bytes":0,"percent":0,"keysPerSecond":0,"path":"/backup/b.kbk"}
{"phase":"reading","keys":500,"estimatedKeys":1000,"bytes":4096,"percent":49.7,"keysPerSecond":1234.6,"path":"/backup/b.kbk"}
{"phase":"done","keys":1000,"estimatedKeys":1000,"bytes":8192,"percent":100,"keysPerSecond":1500,"sha256":"ab12","path":"/backup/b.kbk"}
backed up 1000 keys (3 tombstones), 8192 bytes, sha256 ab12, in 1s
`
	p, ok := ParseProgress([]byte(log))
	if !ok || p.Phase != ProgressDone || p.SHA256 != "ab12" || p.Keys != 1000 {
		t.Fatalf("ParseProgress = %+v, %v", p, ok)
	}
	p, _ = ParseProgress([]byte(strings.SplitAfterN(log, "\n", 3)[1]))
	if st := p.Status(); st.Percent != 49 || st.KeysPerSecond != 1235 || st.EstimatedKeys != 1000 || st.Bytes != 4096 {
		t.Errorf("Status() = %+v", st)
	}
	failed := `{"phase":"verifying","keys":2}
{"phase":"failed","keys":2,"error":"/backup/b.kbk: backup is corrupt: checksum mismatch"}
Error: /backup/b.kbk: backup is corrupt
{not json
`
	if p, ok := ParseProgress([]byte(failed)); !ok || p.Phase != ProgressFailed || !strings.Contains(p.Error, "corrupt") {
		t.Errorf("failed: %+v %v", p, ok)
	}
	for _, l := range []string{"", "hello\n", `{"keys":3}`, `{"phase":`} {
		if _, ok := ParseProgress([]byte(l)); ok {
			t.Errorf("ParseProgress(%q) found a line", l)
		}
	}
	if st := (ProgressLine{Percent: 140, KeysPerSecond: -1}).Status(); st.Percent != 100 || st.KeysPerSecond != 0 {
		t.Errorf("clamped: %+v", st)
	}
}

func jobWith(conds ...batchv1.JobConditionType) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "b-backup"}}
	for _, c := range conds {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", Message: "Job has reached the specified backoff limit"})
	}
	return j
}

func TestJobPhase(t *testing.T) {
	running := &ProgressLine{Phase: "reading", Keys: 10, EstimatedKeys: 100, Percent: 10}
	done := &ProgressLine{Phase: ProgressDone, Keys: 100, Bytes: 900, SHA256: "ff"}
	failed := &ProgressLine{Phase: ProgressFailed, Error: "connection refused"}
	for _, tc := range []struct {
		name    string
		o       JobObservation
		needSHA bool
		phase   kshakav1alpha1.BackupPhase
		msg     string
		sha     string
	}{
		{"starting", JobObservation{Job: jobWith()}, true, kshakav1alpha1.BackupPending, "is starting", ""},
		{"unschedulable", JobObservation{Job: jobWith(), Waiting: "pod x is not scheduled: no nodes"}, true, kshakav1alpha1.BackupPending, "no nodes", ""},
		{"running", JobObservation{Job: jobWith(), Progress: running}, true, kshakav1alpha1.BackupRunning, "of about 100 (10%)", ""},
		{"complete", JobObservation{Job: jobWith(batchv1.JobComplete), Progress: done}, true, kshakav1alpha1.BackupCompleted, "100 keys, 900 bytes, sha256 ff", "ff"},
		{"complete without log", JobObservation{Job: jobWith(batchv1.JobComplete), LogError: "forbidden"}, true, kshakav1alpha1.BackupRunning, "reading the checksum from its log: forbidden", ""},
		{"restore complete", JobObservation{Job: jobWith(batchv1.JobComplete)}, false, kshakav1alpha1.BackupCompleted, "completed", ""},
		{"failed with line", JobObservation{Job: jobWith(batchv1.JobFailed), Progress: failed}, true, kshakav1alpha1.BackupFailed, "failed: connection refused (kubectl logs job/b-backup)", ""},
		{"failed without line", JobObservation{Job: jobWith(batchv1.JobFailed), Progress: running}, true, kshakav1alpha1.BackupFailed, "BackoffLimitExceeded: Job has reached", ""},
	} {
		out := JobPhase(tc.o, "backup", tc.needSHA)
		if out.Phase != tc.phase || !strings.Contains(out.Message, tc.msg) || out.SHA256 != tc.sha {
			t.Errorf("%s: %+v, want phase %s message ~%q sha %q", tc.name, out, tc.phase, tc.msg, tc.sha)
		}
		if out.Finished != finished(out.Phase) {
			t.Errorf("%s: finished %v in phase %s", tc.name, out.Finished, out.Phase)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for _, s := range []string{"0 3 * * *", "@daily", "@every 6h", "*/5 * * * 1-5"} {
		if _, err := ParseSchedule(s); err != nil {
			t.Errorf("ParseSchedule(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "daily", "61 * * * *", "* * * *", "TZ=Europe/Paris 0 3 * * *", "0 0 3 * * *"} {
		if _, err := ParseSchedule(s); err == nil || !strings.Contains(err.Error(), "schedule") {
			t.Errorf("ParseSchedule(%q) = %v, want an error naming the schedule", s, err)
		}
	}
}

func newSchedule(created time.Time) *kshakav1alpha1.KshakaScheduledBackup {
	return &kshakav1alpha1.KshakaScheduledBackup{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ns", UID: "uid-s", CreationTimestamp: metav1.NewTime(created)},
		Spec: kshakav1alpha1.KshakaScheduledBackupSpec{
			Schedule: "0 3 * * *", Cluster: corev1.LocalObjectReference{Name: "kc"}, ClaimName: "backups",
		},
	}
}

func TestPlanSchedule(t *testing.T) {
	created := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at3 := func(day int) time.Time { return time.Date(2026, 12, day, 3, 0, 0, 0, time.UTC) }
	s := newSchedule(created)
	sched, err := ParseSchedule(s.Spec.Schedule)
	if err != nil {
		t.Fatal(err)
	}
	// Before the first run: nothing, next at 03:00 tomorrow.
	p := PlanSchedule(s, sched, nil, created.Add(time.Hour))
	if p.Create != nil || !p.Next.Equal(at3(2)) {
		t.Fatalf("before the first run: %+v", p)
	}
	// Immediate: a run at creation.
	s.Spec.Immediate = true
	if p := PlanSchedule(s, sched, nil, created.Add(time.Second)); p.Create == nil || !p.Create.Equal(created.Add(time.Second)) {
		t.Fatalf("immediate: %+v", p)
	}
	s.Spec.Immediate = false
	// At the run's time: a backup named after it.
	p = PlanSchedule(s, sched, nil, at3(2).Add(2*time.Second))
	if p.Create == nil || !p.Create.Equal(at3(2)) || !p.Next.Equal(at3(3)) {
		t.Fatalf("at 03:00: %+v", p)
	}
	if n := ScheduledBackupName(s, *p.Create); n != "nightly-20261202030000" {
		t.Errorf("name %s", n)
	}
	b := ScheduledBackup(s, *p.Create)
	if b.Spec.Path != "kc/nightly-20261202030000.kbk" || !metav1.IsControlledBy(b, s) || b.Labels[LabelScheduledBackup] != "nightly" {
		t.Errorf("backup %+v", b)
	}
	// Recorded: nothing more until the next day.
	s.Status.LastScheduleTime = ptrTime(at3(2))
	if p := PlanSchedule(s, sched, nil, at3(2).Add(time.Hour)); p.Create != nil {
		t.Fatalf("after the run: %+v", p)
	}
	// Three days missed: one run, the latest.
	if p := PlanSchedule(s, sched, nil, at3(5).Add(time.Hour)); p.Create == nil || !p.Create.Equal(at3(5)) || !p.Next.Equal(at3(6)) {
		t.Fatalf("missed runs: %+v", p)
	}
	// Suspended: none, next still shown.
	s.Spec.Suspend = true
	if p := PlanSchedule(s, sched, nil, at3(3)); p.Create != nil || !p.Next.After(at3(3)) {
		t.Fatalf("suspended: %+v", p)
	}
	s.Spec.Suspend = false
	// A backup of the schedule still runs: the due run waits.
	running := []kshakav1alpha1.KshakaBackup{{ObjectMeta: metav1.ObjectMeta{Name: "nightly-20261202030000"}, Status: kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupRunning}}}
	if p := PlanSchedule(s, sched, running, at3(3)); p.Create != nil || !strings.Contains(p.Waiting, "nightly-20261202030000") {
		t.Fatalf("while one runs: %+v", p)
	}
}

func TestPruneBackups(t *testing.T) {
	var bs []kshakav1alpha1.KshakaBackup
	add := func(name string, phase kshakav1alpha1.BackupPhase) {
		bs = append(bs, kshakav1alpha1.KshakaBackup{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: kshakav1alpha1.KshakaBackupStatus{Phase: phase}})
	}
	add("s-20261201030000", kshakav1alpha1.BackupCompleted)
	add("s-20261202030000", kshakav1alpha1.BackupFailed)
	add("s-20261203030000", kshakav1alpha1.BackupCompleted)
	add("s-20261204030000", kshakav1alpha1.BackupCompleted)
	add("s-20261205030000", kshakav1alpha1.BackupFailed)
	add("s-20261206030000", kshakav1alpha1.BackupRunning)
	got := pruneBackups(bs, 2)
	slices.Sort(got)
	want := []string{"s-20261201030000", "s-20261202030000"}
	if !slices.Equal(got, want) {
		t.Errorf("pruneBackups = %v, want %v (completed beyond 2; failed older than the newest completed)", got, want)
	}
	if n := lastSuccessful(bs); n != "s-20261204030000" {
		t.Errorf("lastSuccessful = %s", n)
	}
	if got := historyLimit(&kshakav1alpha1.KshakaScheduledBackup{}); got != defaultHistoryLimit {
		t.Errorf("default limit %d", got)
	}
}

func restoringCluster(src kshakav1alpha1.BackupSource) *kshakav1alpha1.KshakaCluster {
	c := availableCluster()
	c.Spec.Bootstrap = &kshakav1alpha1.BootstrapSpec{FromBackup: &src}
	c.Status.Restore = &kshakav1alpha1.RestoreStatus{Phase: kshakav1alpha1.BackupPending}
	return c
}

func completedBackup(sha string) *kshakav1alpha1.KshakaBackup {
	b := newBackup("b1")
	b.Status = kshakav1alpha1.KshakaBackupStatus{Phase: kshakav1alpha1.BackupCompleted, Path: "kc/b1.kbk", SHA256: sha}
	return b
}

func TestPlanRestore(t *testing.T) {
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	sha := strings.Repeat("ab", 32)
	other := strings.Repeat("cd", 32)
	plan := func(c *kshakav1alpha1.KshakaCluster, o RestoreObserved) RestorePlan {
		return PlanRestore(c, &c.Status, o, now)
	}
	if p := plan(availableCluster(), RestoreObserved{}); !p.Done || p.Status != nil || p.Job != nil {
		t.Fatalf("no bootstrap: %+v", p)
	}
	byName := kshakav1alpha1.BackupSource{BackupName: "b1"}
	for _, tc := range []struct {
		name   string
		c      *kshakav1alpha1.KshakaCluster
		o      RestoreObserved
		phase  kshakav1alpha1.BackupPhase
		reason string
		msg    string
		job    bool
	}{
		{"backup missing", restoringCluster(byName), RestoreObserved{}, kshakav1alpha1.BackupPending, ReasonWaitingForBackup, "waiting for KshakaBackup b1 to exist", false},
		{"backup running", restoringCluster(byName), RestoreObserved{Backup: func() *kshakav1alpha1.KshakaBackup {
			b := completedBackup(sha)
			b.Status.Phase = kshakav1alpha1.BackupRunning
			return b
		}()}, kshakav1alpha1.BackupPending, ReasonWaitingForBackup, "to complete (it is Running)", false},
		{"backup failed", restoringCluster(byName), RestoreObserved{Backup: func() *kshakav1alpha1.KshakaBackup {
			b := completedBackup("")
			b.Status.Phase = kshakav1alpha1.BackupFailed
			return b
		}()}, kshakav1alpha1.BackupFailed, ReasonRestoreFailed, "KshakaBackup b1 failed", false},
		{"sha mismatch", restoringCluster(kshakav1alpha1.BackupSource{BackupName: "b1", SHA256: other}), RestoreObserved{Backup: completedBackup(sha)},
			kshakav1alpha1.BackupFailed, ReasonRestoreFailed, "does not match", false},
		{"verify first", restoringCluster(kshakav1alpha1.BackupSource{BackupName: "b1", SHA256: sha}), RestoreObserved{Backup: completedBackup(sha)},
			kshakav1alpha1.BackupPending, ReasonRestoring, "creating Job kc-restore-verify", true},
		{"verifying", restoringCluster(byName), RestoreObserved{Backup: completedBackup(sha), Verify: JobObservation{Job: verifyJob(), Progress: &ProgressLine{Phase: "verifying", Keys: 3}}},
			kshakav1alpha1.BackupPending, ReasonRestoring, "verifying backups/kc/b1.kbk: verification verifying: 3 keys", false},
		{"verify failed", restoringCluster(byName), RestoreObserved{Backup: completedBackup(sha), Verify: JobObservation{Job: verifyJob(batchv1.JobFailed), Progress: &ProgressLine{Phase: ProgressFailed, Error: "backup file corrupt at byte 9"}}},
			kshakav1alpha1.BackupFailed, ReasonRestoreFailed, "corrupt at byte 9 (kubectl logs job/kc-restore-verify); nothing was restored", false},
		{"other file", restoringCluster(byName), RestoreObserved{Backup: completedBackup(sha), Verify: verified(other)},
			kshakav1alpha1.BackupFailed, ReasonRestoreFailed, "has sha256 " + other + ", not the expected " + sha, false},
		{"verified", restoringCluster(byName), RestoreObserved{Backup: completedBackup(sha), Verify: verified(sha)},
			kshakav1alpha1.BackupPending, ReasonRestoring, "creating Job kc-restore", true},
		{"by claim", restoringCluster(kshakav1alpha1.BackupSource{ClaimName: "old", Path: "x/y.kbk"}), RestoreObserved{},
			kshakav1alpha1.BackupPending, ReasonRestoring, "creating Job kc-restore to restore old/x/y.kbk", true},
		{"by claim with sha", restoringCluster(kshakav1alpha1.BackupSource{ClaimName: "old", Path: "x/y.kbk", SHA256: sha}), RestoreObserved{},
			kshakav1alpha1.BackupPending, ReasonRestoring, "creating Job kc-restore-verify to verify old/x/y.kbk", true},
		{"cluster not available", func() *kshakav1alpha1.KshakaCluster {
			c := restoringCluster(byName)
			meta.SetStatusCondition(&c.Status.Conditions, metav1.Condition{Type: kshakav1alpha1.ConditionAvailable, Status: metav1.ConditionFalse, Reason: "NoQuorum"})
			return c
		}(), RestoreObserved{Backup: completedBackup(sha), Verify: verified(sha)}, kshakav1alpha1.BackupPending, ReasonRestoring, "not Available", false},
		{"added later", func() *kshakav1alpha1.KshakaCluster {
			c := restoringCluster(byName)
			c.Status.Restore = nil
			return c
		}(), RestoreObserved{Backup: completedBackup(sha)}, kshakav1alpha1.BackupFailed, ReasonRestoreFailed, "only applies at creation", false},
		{"running", restoringCluster(byName), RestoreObserved{Job: JobObservation{Job: ownedJob(), Progress: &ProgressLine{Phase: "restoring", Keys: 5}}},
			kshakav1alpha1.BackupRunning, ReasonRestoring, "restore restoring: 5 keys", false},
		{"failed", restoringCluster(byName), RestoreObserved{Job: JobObservation{Job: ownedJob(batchv1.JobFailed), Progress: &ProgressLine{Phase: ProgressFailed, Error: "backup is corrupt"}}},
			kshakav1alpha1.BackupFailed, ReasonRestoreFailed, "backup is corrupt", false},
		{"completed", restoringCluster(byName), RestoreObserved{Job: JobObservation{Job: ownedJob(batchv1.JobComplete), Progress: &ProgressLine{Phase: ProgressDone, Keys: 7}}},
			kshakav1alpha1.BackupCompleted, ReasonRestored, "7 keys", false},
	} {
		p := plan(tc.c, tc.o)
		if p.Status.Phase != tc.phase || p.Condition.Reason != tc.reason || !strings.Contains(p.Status.Message, tc.msg) || (p.Job != nil) != tc.job {
			t.Errorf("%s: phase %s reason %s message %q job %v; want %s %s ~%q job %v", tc.name, p.Status.Phase, p.Condition.Reason, p.Status.Message, p.Job != nil, tc.phase, tc.reason, tc.msg, tc.job)
		}
		if p.Done != (tc.phase == kshakav1alpha1.BackupCompleted) || (p.Condition.Status == metav1.ConditionTrue) != p.Done {
			t.Errorf("%s: done %v condition %s", tc.name, p.Done, p.Condition.Status)
		}
		if tc.job {
			want := "kc-restore"
			if strings.Contains(tc.msg, "verify") {
				want = "kc-restore-verify"
			}
			args := strings.Join(p.Job.Spec.Template.Spec.Containers[0].Command, " ")
			if p.Job.Name != want || strings.Contains(args, "--verify-only") != (want == "kc-restore-verify") {
				t.Errorf("%s: job %s: %s", tc.name, p.Job.Name, args)
			}
		}
	}
	// Completed is final, whatever is observed next.
	c := restoringCluster(byName)
	c.Status.Restore.Phase = kshakav1alpha1.BackupCompleted
	if p := plan(c, RestoreObserved{}); !p.Done || p.Job != nil || p.Condition.Status != metav1.ConditionTrue {
		t.Errorf("completed: %+v", p)
	}
}

// verified is a verification Job that completed with sha.
func verified(sha string) JobObservation {
	return JobObservation{Job: verifyJob(batchv1.JobComplete), Progress: &ProgressLine{Phase: ProgressDone, Keys: 3, SHA256: sha}}
}

func verifyJob(conds ...batchv1.JobConditionType) *batchv1.Job {
	j := ownedJob(conds...)
	j.Name = "kc-restore-verify"
	return j
}

func ownedJob(conds ...batchv1.JobConditionType) *batchv1.Job {
	j := jobWith(conds...)
	j.Name = "kc-restore"
	j.OwnerReferences = []metav1.OwnerReference{ownerRef(availableCluster())}
	return j
}

func TestWithoutClientSecrets(t *testing.T) {
	c := availableCluster()
	c.Spec.TLS.ExtraClients = []kshakav1alpha1.ClientName{"app"}
	var writes []*corev1.Secret
	for _, n := range []string{"kc-ca", "kc-acceptor-tls", "kc-operator-tls", "kc-client-tls", ExtraClientSecretName(c, "app")} {
		writes = append(writes, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: n}})
	}
	var got []string
	for _, s := range withoutClientSecrets(c, writes) {
		got = append(got, s.Name)
	}
	if !slices.Equal(got, []string{"kc-ca", "kc-acceptor-tls", "kc-operator-tls"}) {
		t.Errorf("written while restoring: %v", got)
	}
	if len(writes) != 5 {
		t.Errorf("the input was changed")
	}
}
