/*
Copyright 2026 The Kshaka Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KshakaBackupSpec is what to back up and where (docs/design.md, "Backup
// and restore"). A backup holds every key's latest chosen value with its
// version, tombstones included, each read linearizably through the
// protocol at its own moment: per key, not a cross-key snapshot.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="a KshakaBackup's spec is immutable: create a new backup"
type KshakaBackupSpec struct {
	// Cluster is the KshakaCluster of this namespace to back up.
	Cluster corev1.LocalObjectReference `json:"cluster"`

	// ClaimName is a PersistentVolumeClaim of this namespace that the
	// backup Job mounts and writes the backup file into.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClaimName string `json:"claimName"`

	// Path of the backup file inside the claim, relative, without "..".
	// Default: <cluster>/<backup name>.kbk.
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.contains('..')",message="path must be relative and must not contain '..'"
	// +optional
	Path string `json:"path,omitempty"`
}

// BackupPhase is where a backup (or a restore) is.
// +kubebuilder:validation:Enum=Pending;Running;Completed;Failed
type BackupPhase string

const (
	// BackupPending: accepted, waiting for its Job to start (or for the
	// cluster to be available).
	BackupPending BackupPhase = "Pending"
	// BackupRunning: the Job is reading (or writing) keys.
	BackupRunning BackupPhase = "Running"
	// BackupCompleted: the file is complete and its checksum recorded.
	BackupCompleted BackupPhase = "Completed"
	// BackupFailed: it stopped; Message says why. A failed backup leaves no
	// file that looks complete.
	BackupFailed BackupPhase = "Failed"
)

// BackupProgress is the progress of a backup or restore Job, as the
// `kshaka backup|restore --progress json` command running in it reports.
type BackupProgress struct {
	// Keys written to (or restored from) the file so far.
	// +optional
	Keys int64 `json:"keys,omitempty"`
	// EstimatedKeys is the acceptors' estimate of the number of keys.
	// +optional
	EstimatedKeys int64 `json:"estimatedKeys,omitempty"`
	// Bytes of values (data) read or restored so far; the file is somewhat
	// larger (keys, versions and framing: 27.3 MB for 100,000 values of
	// 256 B).
	// +optional
	Bytes int64 `json:"bytes,omitempty"`
	// Percent done, 0–100 (an estimate while running).
	// +optional
	Percent int32 `json:"percent,omitempty"`
	// KeysPerSecond is the recent rate.
	// +optional
	KeysPerSecond int64 `json:"keysPerSecond,omitempty"`
}

// KshakaBackupStatus is the observed state of a KshakaBackup.
type KshakaBackupStatus struct {
	// Phase of the backup.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`
	// Path of the file inside spec.claimName.
	// +optional
	Path string `json:"path,omitempty"`
	// JobName is the Job that runs the backup.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// Progress of the Job.
	// +optional
	Progress BackupProgress `json:"progress,omitempty"`
	// SHA256 of the complete file, hex; restores check it.
	// +optional
	SHA256 string `json:"sha256,omitempty"`
	// StartedAt is when the Job started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// CompletedAt is when the backup completed or failed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// Message explains the phase (why it failed, what it waits for).
	// +optional
	Message string `json:"message,omitempty"`
	// Conditions: Completed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// KshakaBackup is one backup of a KshakaCluster into a file on a
// PersistentVolumeClaim, written by a Job the operator runs.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=kbk,categories=kshaka
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Keys",type=integer,JSONPath=`.status.progress.keys`
// +kubebuilder:printcolumn:name="Percent",type=integer,JSONPath=`.status.progress.percent`
// +kubebuilder:printcolumn:name="Claim",type=string,JSONPath=`.spec.claimName`,priority=1
// +kubebuilder:printcolumn:name="Path",type=string,JSONPath=`.status.path`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KshakaBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec KshakaBackupSpec `json:"spec"`
	// +optional
	Status KshakaBackupStatus `json:"status,omitempty"`
}

// KshakaBackupList contains a list of KshakaBackup.
//
// +kubebuilder:object:root=true
type KshakaBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KshakaBackup `json:"items"`
}

// KshakaScheduledBackupSpec says when to back up a cluster: each run
// creates a KshakaBackup named <scheduled backup>-<UTC time, yyyymmddhhmmss>.
type KshakaScheduledBackupSpec struct {
	// Schedule in cron format: five fields (minute hour day-of-month month
	// day-of-week), or a descriptor such as @daily or @every 6h. Times are
	// UTC.
	// +kubebuilder:validation:MinLength=1
	Schedule string `json:"schedule"`

	// Cluster is the KshakaCluster of this namespace to back up.
	Cluster corev1.LocalObjectReference `json:"cluster"`

	// ClaimName is the PersistentVolumeClaim the backups are written to.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClaimName string `json:"claimName"`

	// Suspend stops creating new backups; running ones go on.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// Immediate takes a first backup when the schedule is created.
	// +optional
	Immediate bool `json:"immediate,omitempty"`

	// SuccessfulBackupsHistoryLimit is how many completed KshakaBackups of
	// this schedule are kept; older ones, and failed ones older than the
	// newest completed one, are deleted. Deleting a KshakaBackup leaves its
	// file on the claim: remove old files with the claim's own tools.
	// +kubebuilder:default=7
	// +kubebuilder:validation:Minimum=1
	// +optional
	SuccessfulBackupsHistoryLimit *int32 `json:"successfulBackupsHistoryLimit,omitempty"`
}

// KshakaScheduledBackupStatus is the observed state of a
// KshakaScheduledBackup.
type KshakaScheduledBackupStatus struct {
	// LastScheduleTime is when the last backup was created.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// NextScheduleTime is when the next one will be.
	// +optional
	NextScheduleTime *metav1.Time `json:"nextScheduleTime,omitempty"`
	// LastBackupName is the KshakaBackup created last.
	// +optional
	LastBackupName string `json:"lastBackupName,omitempty"`
	// LastSuccessfulBackupName is the newest completed KshakaBackup.
	// +optional
	LastSuccessfulBackupName string `json:"lastSuccessfulBackupName,omitempty"`
	// Conditions: Ready (the schedule parses and the cluster exists).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// KshakaScheduledBackup creates KshakaBackups of a cluster on a schedule.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=ksb,categories=kshaka
// +kubebuilder:printcolumn:name="Cluster",type=string,JSONPath=`.spec.cluster.name`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Suspend",type=boolean,JSONPath=`.spec.suspend`
// +kubebuilder:printcolumn:name="Last-Backup",type=string,JSONPath=`.status.lastBackupName`
// +kubebuilder:printcolumn:name="Next",type=date,JSONPath=`.status.nextScheduleTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KshakaScheduledBackup struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec KshakaScheduledBackupSpec `json:"spec"`
	// +optional
	Status KshakaScheduledBackupStatus `json:"status,omitempty"`
}

// KshakaScheduledBackupList contains a list of KshakaScheduledBackup.
//
// +kubebuilder:object:root=true
type KshakaScheduledBackupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KshakaScheduledBackup `json:"items"`
}

// BootstrapSpec says how a new cluster gets its first data.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="bootstrap is immutable: it only applies when the cluster is created"
type BootstrapSpec struct {
	// FromBackup restores a backup into the new cluster before it is
	// Ready. Versions keep counting from the backup's.
	// +optional
	FromBackup *BackupSource `json:"fromBackup,omitempty"`
}

// BackupSource names a backup file: a completed KshakaBackup of this
// namespace, or a file on a PersistentVolumeClaim of this namespace.
// +kubebuilder:validation:XValidation:rule="has(self.backupName) != has(self.claimName)",message="set backupName, or claimName with path"
// +kubebuilder:validation:XValidation:rule="has(self.claimName) == has(self.path)",message="claimName and path go together"
type BackupSource struct {
	// BackupName is a KshakaBackup of this namespace (its claim and path).
	// +optional
	BackupName string `json:"backupName,omitempty"`
	// ClaimName is the PersistentVolumeClaim holding the file.
	// +optional
	ClaimName string `json:"claimName,omitempty"`
	// Path of the file inside the claim.
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('/') && !self.contains('..')",message="path must be relative and must not contain '..'"
	// +optional
	Path string `json:"path,omitempty"`
	// SHA256 the file must have (hex). Default: the KshakaBackup's
	// status.sha256 when backupName is set; the file's own checksum is
	// verified either way.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	// +optional
	SHA256 string `json:"sha256,omitempty"`
}

// RestoreStatus is the progress of spec.bootstrap.fromBackup.
type RestoreStatus struct {
	// Phase of the restore.
	// +optional
	Phase BackupPhase `json:"phase,omitempty"`
	// Source is the file restored: <claim>/<path>.
	// +optional
	Source string `json:"source,omitempty"`
	// JobName is the Job that runs the restore.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// Progress of the Job.
	// +optional
	Progress BackupProgress `json:"progress,omitempty"`
	// StartedAt is when the Job started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
	// CompletedAt is when the restore completed or failed.
	// +optional
	CompletedAt *metav1.Time `json:"completedAt,omitempty"`
	// Message explains the phase.
	// +optional
	Message string `json:"message,omitempty"`
}
