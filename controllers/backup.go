package controllers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// The backup and restore Jobs (docs/design.md §13) run `kshaka backup` and
// `kshaka restore` from the cluster's own acceptor image, which holds the
// CLI as /kshaka. They present the operator's admin certificate: the
// Secret <cluster>-operator-tls is mounted into them and into no other pod.

// Names, labels and paths of the backup and restore Jobs.
const (
	// ComponentBackup and ComponentRestore are the app.kubernetes.io/component
	// of the Jobs and their pods; the NetworkPolicy admits them to the gRPC
	// port.
	ComponentBackup  = "backup"
	ComponentRestore = "restore"

	// CLIPath is the kshaka CLI in the acceptor image.
	CLIPath = "/kshaka"
	// BackupMountPath is where the Jobs mount the backup claim (the
	// directory of the file inside it).
	BackupMountPath = "/backup"
	// JobTLSMountPath is where the Jobs mount <cluster>-operator-tls.
	JobTLSMountPath = "/etc/kshaka/admin-tls"
	// BackupFileSuffix is the suffix of default backup paths.
	BackupFileSuffix = ".kbk"
	// JobTimeout is the CLI's --timeout in the Jobs: connecting and each
	// key's read or write (not the whole run, which has no bound); a key
	// that takes longer fails the Job.
	JobTimeout = "1m"

	transferContainer = "kshaka"
	backupVolume      = "backup"
	tmpVolume         = "tmp"
)

// BackupJobName is the Job of a KshakaBackup: deterministic, so an operator
// restart finds the Job it created.
func BackupJobName(b *kshakav1alpha1.KshakaBackup) string { return b.Name + "-backup" }

// RestoreJobName is the Job restoring spec.bootstrap.fromBackup into c.
func RestoreJobName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-restore" }

// BackupPath is a backup's file inside its claim: spec.path, default
// <cluster>/<backup>.kbk.
func BackupPath(b *kshakav1alpha1.KshakaBackup) string {
	if b.Spec.Path != "" {
		return path.Clean(b.Spec.Path)
	}
	return b.Spec.Cluster.Name + "/" + b.Name + BackupFileSuffix
}

// memberEndpoints are the addresses of the members of c's recorded
// configuration, comma-separated; "" while there is none.
func memberEndpoints(c *kshakav1alpha1.KshakaCluster) string {
	if c.Status.Configuration == nil {
		return ""
	}
	var out []string
	for _, m := range c.Status.Configuration.Members {
		if m.Address != "" {
			out = append(out, m.Address)
		}
	}
	return strings.Join(out, ",")
}

// transferJob is what differs between the backup and the restore Job.
type transferJob struct {
	name      string
	component string
	owner     metav1.OwnerReference
	// args follow /kshaka (the subcommand and its flags).
	args []string
	// claim and file: the file's directory in the claim is mounted at
	// BackupMountPath (a subPath, which the kubelet creates).
	claim, file string
	readOnly    bool
}

// transferArgs are the flags every Job passes: the members, TLS with the
// operator's admin certificate, and a timeout for the whole run.
func transferArgs(c *kshakav1alpha1.KshakaCluster) []string {
	args := []string{"--endpoints=" + memberEndpoints(c), "--timeout=" + JobTimeout, "--progress=json"}
	if TLSEnabled(c) {
		args = append(args,
			"--cacert="+JobTLSMountPath+"/"+KeyCACert,
			"--cert="+JobTLSMountPath+"/"+corev1.TLSCertKey,
			"--key="+JobTLSMountPath+"/"+corev1.TLSPrivateKeyKey,
		)
	}
	return args
}

// jobFile is the file's path in the Job's container.
func jobFile(file string) string { return BackupMountPath + "/" + path.Base(file) }

// jobSubPath is the directory of file inside the claim ("" for its root).
func jobSubPath(file string) string {
	if d := path.Dir(file); d != "." {
		return d
	}
	return ""
}

// BackupJob builds the Job of backup b of cluster c: `kshaka backup` into
// the claim, with the operator's admin identity (ListKeys is an Admin RPC).
func BackupJob(b *kshakav1alpha1.KshakaBackup, c *kshakav1alpha1.KshakaCluster) *batchv1.Job {
	file := BackupPath(b)
	args := append([]string{"backup", "--out=" + jobFile(file), "--cluster-name=" + c.Namespace + "/" + c.Name}, transferArgs(c)...)
	return buildTransferJob(c, transferJob{
		name:      BackupJobName(b),
		component: ComponentBackup,
		owner:     *metav1.NewControllerRef(b, kshakav1alpha1.GroupVersion.WithKind("KshakaBackup")),
		args:      args,
		claim:     b.Spec.ClaimName,
		file:      file,
	})
}

// RestoreJob builds the Job that restores the file at claim/file into c,
// the claim mounted read-only. `kshaka restore` verifies the whole file
// before it writes a key.
func RestoreJob(c *kshakav1alpha1.KshakaCluster, claim, file string) *batchv1.Job {
	args := append([]string{"restore", "--from=" + jobFile(file)}, transferArgs(c)...)
	return buildTransferJob(c, transferJob{
		name:      RestoreJobName(c),
		component: ComponentRestore,
		owner:     ownerRef(c),
		args:      args,
		claim:     claim,
		file:      file,
		readOnly:  true,
	})
}

// VerifyJobName is the Job that checks the checksum of c's
// spec.bootstrap.fromBackup file before the restore.
func VerifyJobName(c *kshakav1alpha1.KshakaCluster) string { return c.Name + "-restore-verify" }

// VerifyJob builds the Job that reads the whole file at claim/file
// (`kshaka restore --verify-only`) and reports its SHA-256, which the
// operator compares with the one expected before it restores anything. It
// talks to no acceptor and mounts no certificate.
func VerifyJob(c *kshakav1alpha1.KshakaCluster, claim, file string) *batchv1.Job {
	view := c.DeepCopy()
	view.Spec.TLS.Mode = kshakav1alpha1.TLSModeDisabled // no certificate mounted
	return buildTransferJob(view, transferJob{
		name:      VerifyJobName(c),
		component: ComponentRestore,
		owner:     ownerRef(c),
		args:      []string{"restore", "--verify-only", "--from=" + jobFile(file), "--progress=json"},
		claim:     claim,
		file:      file,
		readOnly:  true,
	})
}

// TransferLabels are the labels of c's backup or restore Jobs and pods.
// They carry app.kubernetes.io/managed-by, so the operator's cache holds
// the pods.
func TransferLabels(c *kshakav1alpha1.KshakaCluster, component string) map[string]string {
	return map[string]string{
		LabelName:      appName,
		LabelInstance:  c.Name,
		LabelComponent: component,
		LabelManagedBy: managerName,
	}
}

func buildTransferJob(c *kshakav1alpha1.KshakaCluster, t transferJob) *batchv1.Job {
	labels := TransferLabels(c, t.component)
	volumes := []corev1.Volume{
		{Name: backupVolume, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: t.claim, ReadOnly: t.readOnly}}},
		{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}
	mounts := []corev1.VolumeMount{
		{Name: backupVolume, MountPath: BackupMountPath, SubPath: jobSubPath(t.file), ReadOnly: t.readOnly},
		{Name: tmpVolume, MountPath: "/tmp"},
	}
	if TLSEnabled(c) {
		volumes = append(volumes, corev1.Volume{Name: tlsVolume, VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: OperatorTLSSecretName(c), DefaultMode: ptr.To[int32](0o400)},
		}})
		mounts = append(mounts, corev1.VolumeMount{Name: tlsVolume, MountPath: JobTLSMountPath, ReadOnly: true})
	}
	container := corev1.Container{
		Name:            transferContainer,
		Image:           Image(c),
		ImagePullPolicy: c.Spec.ImagePullPolicy,
		Command:         append([]string{CLIPath}, t.args...),
		Env:             []corev1.EnvVar{{Name: "HOME", Value: "/tmp"}, {Name: "TMPDIR", Value: "/tmp"}},
		SecurityContext: containerSecurityContext(c),
		VolumeMounts:    mounts,
		// The progress lines are on stderr; the log is what the operator
		// reads, so a failure's last words stay in it.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:            t.name,
			Namespace:       c.Namespace,
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{t.owner},
		},
		Spec: batchv1.JobSpec{
			// One attempt: a failure is reported, not retried behind the
			// user's back (a restore rerun is harmless, and deleting the Job
			// reruns it).
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					Containers:                   []corev1.Container{container},
					Volumes:                      volumes,
					SecurityContext:              podSecurityContext(c),
					ImagePullSecrets:             c.Spec.ImagePullSecrets,
					Tolerations:                  c.Spec.Tolerations,
					NodeSelector:                 c.Spec.NodeSelector,
					PriorityClassName:            c.Spec.PriorityClassName,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
				},
			},
		},
	}
}

// ProgressLine is one line of `kshaka backup|restore --progress json`.
type ProgressLine struct {
	Phase         string  `json:"phase"`
	Keys          int64   `json:"keys"`
	EstimatedKeys int64   `json:"estimatedKeys"`
	Bytes         int64   `json:"bytes"`
	Percent       float64 `json:"percent"`
	KeysPerSecond float64 `json:"keysPerSecond"`
	SHA256        string  `json:"sha256,omitempty"`
	Path          string  `json:"path,omitempty"`
	Error         string  `json:"error,omitempty"`
}

// Progress phases of the CLI that end a run.
const (
	ProgressDone   = "done"
	ProgressFailed = "failed"
)

// ParseProgress returns the last progress line of a Job's log: the last
// line that is a JSON object with a phase. Other lines (the summary on
// stdout, the advice of an error) are skipped. ok is false when there is
// none.
func ParseProgress(log []byte) (ProgressLine, bool) {
	lines := bytes.Split(log, []byte("\n"))
	for i := len(lines) - 1; i >= 0; i-- {
		l := bytes.TrimSpace(lines[i])
		if len(l) == 0 || l[0] != '{' {
			continue
		}
		var p ProgressLine
		if err := json.Unmarshal(l, &p); err != nil || p.Phase == "" {
			continue
		}
		return p, true
	}
	return ProgressLine{}, false
}

// Status converts a progress line to the API's progress.
func (p ProgressLine) Status() kshakav1alpha1.BackupProgress {
	return kshakav1alpha1.BackupProgress{
		Keys:          p.Keys,
		EstimatedKeys: p.EstimatedKeys,
		Bytes:         p.Bytes,
		Percent:       int32(math.Max(0, math.Min(100, math.Floor(p.Percent)))),
		KeysPerSecond: int64(math.Max(0, math.Round(p.KeysPerSecond))),
	}
}

// JobObservation is what the operator saw of a backup or restore Job.
type JobObservation struct {
	// Job is nil when it does not exist.
	Job *batchv1.Job
	// Progress is the last progress line of its newest pod's log.
	Progress *ProgressLine
	// Waiting says why its pod does not run yet (a waiting reason and
	// message, or the scheduler's), "" when nothing is known.
	Waiting string
	// LogError is why the log could not be read, "" when it was.
	LogError string
}

// JobOutcome is the phase a Job's observation gives.
type JobOutcome struct {
	Phase    kshakav1alpha1.BackupPhase
	Progress kshakav1alpha1.BackupProgress
	SHA256   string
	Message  string
	// Finished: the Job completed or failed (CompletedAt to be set).
	Finished bool
}

// jobCondition returns the Job's condition of type typ with status True.
func jobCondition(j *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if c := &j.Status.Conditions[i]; c.Type == typ && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

// JobPhase decides a backup's or restore's phase from its Job (which must
// exist). what names it ("backup", "restore"); needSHA: Completed requires
// the final progress line's checksum (a backup records it).
func JobPhase(o JobObservation, what string, needSHA bool) JobOutcome {
	var out JobOutcome
	if o.Progress != nil {
		out.Progress = o.Progress.Status()
	}
	name := o.Job.Name
	switch {
	case jobCondition(o.Job, batchv1.JobComplete) != nil:
		if needSHA && (o.Progress == nil || o.Progress.Phase != ProgressDone || o.Progress.SHA256 == "") {
			out.Phase = kshakav1alpha1.BackupRunning
			out.Message = fmt.Sprintf("Job %s completed; reading the checksum from its log", name)
			if o.LogError != "" {
				out.Message += ": " + o.LogError
			}
			return out
		}
		out.Phase, out.Finished = kshakav1alpha1.BackupCompleted, true
		if o.Progress != nil {
			out.SHA256 = o.Progress.SHA256
			out.Progress.Percent = 100
		}
		out.Message = fmt.Sprintf("%s completed: %d keys, %d bytes", what, out.Progress.Keys, out.Progress.Bytes)
		if out.SHA256 != "" {
			out.Message += ", sha256 " + out.SHA256
		}
		return out
	case jobCondition(o.Job, batchv1.JobFailed) != nil:
		out.Phase, out.Finished = kshakav1alpha1.BackupFailed, true
		cond := jobCondition(o.Job, batchv1.JobFailed)
		why := cond.Reason
		if cond.Message != "" {
			why += ": " + cond.Message
		}
		if o.Progress != nil && o.Progress.Phase == ProgressFailed && o.Progress.Error != "" {
			why = o.Progress.Error
		}
		out.Message = fmt.Sprintf("%s failed: %s (kubectl logs job/%s)", what, why, name)
		return out
	}
	if o.Progress == nil {
		out.Phase = kshakav1alpha1.BackupPending
		out.Message = fmt.Sprintf("Job %s is starting", name)
		if o.Waiting != "" {
			out.Message += ": " + o.Waiting
		}
		return out
	}
	out.Phase = kshakav1alpha1.BackupRunning
	out.Message = fmt.Sprintf("%s %s: %d keys", what, o.Progress.Phase, out.Progress.Keys)
	if out.Progress.EstimatedKeys > 0 {
		out.Message += fmt.Sprintf(" of about %d (%d%%)", out.Progress.EstimatedKeys, out.Progress.Percent)
	}
	return out
}
