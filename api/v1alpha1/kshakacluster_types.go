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
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AddressMode says how members' addresses, which proposers dial, are formed.
// +kubebuilder:validation:Enum=DNS;PodIP
type AddressMode string

const (
	// AddressModeDNS: <pod>.<cluster>-peers.<namespace>.svc:<port>. Stable
	// across pod restarts; needs cluster DNS.
	AddressModeDNS AddressMode = "DNS"
	// AddressModePodIP: <podIP>:<port>. No DNS needed; an address changes
	// when its pod is recreated, and the operator then installs a new epoch.
	AddressModePodIP AddressMode = "PodIP"
)

// KshakaClusterSpec is the desired state of a KshakaCluster.
type KshakaClusterSpec struct {
	// Replicas is the number of acceptors. The operator changes membership
	// one acceptor at a time (docs/design.md §5), so a change from 3 to 5 runs two
	// full add procedures.
	// +kubebuilder:default=3
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=15
	// +optional
	Replicas int32 `json:"replicas,omitempty"`

	// Image is the acceptor image repository, without a tag.
	// +kubebuilder:default="ghcr.io/kshaka-io/kshaka-acceptor"
	// +kubebuilder:validation:MinLength=1
	// +optional
	Image string `json:"image,omitempty"`

	// Version is the acceptor image tag.
	// +kubebuilder:default="v0.1.0"
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`
	// +optional
	Version string `json:"version,omitempty"`

	// ImagePullPolicy of the acceptor container.
	// +kubebuilder:validation:Enum=Always;IfNotPresent;Never
	// +optional
	ImagePullPolicy corev1.PullPolicy `json:"imagePullPolicy,omitempty"`

	// ImagePullSecrets for the acceptor pods.
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`

	// Storage is each acceptor's persistent volume (and, with storage.wal,
	// a second one for the write-ahead log). The storage classes cannot be
	// changed after creation, nor the WAL volume added or removed; the
	// sizes may grow, never shrink: the operator then requests the new size
	// on every existing volume claim (the StorageClass must have
	// allowVolumeExpansion: true) and recreates the StatefulSet, leaving its
	// pods running, so that new claims get it too.
	// +kubebuilder:default={size: "1Gi"}
	// +optional
	Storage StorageSpec `json:"storage,omitempty"`

	// Resources of the acceptor container.
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`

	// Affinity of the acceptor pods. When unset, the operator adds a
	// preferred anti-affinity that spreads acceptors across nodes.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// Tolerations of the acceptor pods.
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// NodeSelector of the acceptor pods.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// TopologySpreadConstraints of the acceptor pods. A constraint without a
	// labelSelector gets the cluster's pod selector.
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`

	// PriorityClassName of the acceptor pods.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// PodSecurityContext of the acceptor pods. When unset, a context
	// compatible with the "restricted" Pod Security Standard is used.
	// +optional
	PodSecurityContext *corev1.PodSecurityContext `json:"podSecurityContext,omitempty"`

	// SecurityContext of the acceptor container. When unset, a context
	// compatible with the "restricted" Pod Security Standard is used.
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`

	// Service is the client Service proposers bootstrap from.
	// +kubebuilder:default={}
	// +optional
	Service ServiceSpec `json:"service,omitempty"`

	// Paused freezes every change the operator makes to the cluster's
	// objects and membership; the status keeps being refreshed.
	// +optional
	Paused bool `json:"paused,omitempty"`

	// AddressMode says how member addresses are formed. It cannot be
	// changed after creation.
	// +kubebuilder:default=DNS
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="addressMode is immutable: members' addresses are part of the installed configuration"
	// +optional
	AddressMode AddressMode `json:"addressMode,omitempty"`

	// TLS secures the acceptors' gRPC port with mutual TLS (docs/design.md
	// §9). It is on when the field is absent: mode Operator, the operator's
	// own CA.
	// +kubebuilder:default={}
	// +optional
	TLS TLSSpec `json:"tls,omitempty"`

	// NetworkPolicy limits who reaches the acceptors' ports. It is on when
	// the field is absent.
	// +kubebuilder:default={}
	// +optional
	NetworkPolicy NetworkPolicySpec `json:"networkPolicy,omitempty"`

	// PodMetadata adds labels and annotations to the acceptor pods (for
	// example a service mesh's or a backup tool's). Keys the operator or
	// the StatefulSet controller set (app.kubernetes.io/name, instance,
	// component, managed-by; controller-revision-hash,
	// statefulset.kubernetes.io/pod-name, apps.kubernetes.io/pod-index) and
	// the kshaka.io/ prefix are refused (Degraded, InvalidSpec). Changing
	// them restarts the acceptors one at a time.
	// +optional
	PodMetadata *PodMetadata `json:"podMetadata,omitempty"`

	// ExtraArgs are appended to the acceptor's command line, e.g.
	// "--cache-size=268435456" or "--max-value-size=2097152" (bytes;
	// kshaka-acceptor --help lists the flags). Flags the operator sets
	// itself (--data-dir, --wal-dir, --listen, --metrics-listen,
	// --health-listen, --tls-*-file) and --admin-token(-file) are refused:
	// the cluster is then Degraded with reason InvalidSpec and its
	// StatefulSet is left as it is. Changing them restarts the acceptors
	// one at a time.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	ExtraArgs []string `json:"extraArgs,omitempty"`

	// Env adds environment variables to the acceptor container (the
	// acceptor reads KSHAKA_* variables as flags; a flag on the command
	// line wins). POD_NAME, POD_NAMESPACE, POD_IP and the KSHAKA_* variable
	// of every flag ExtraArgs may not set are refused (Degraded,
	// InvalidSpec).
	// +kubebuilder:validation:MaxItems=64
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// Bootstrap says how a new cluster gets its first data: empty, or
	// restored from a backup. It only applies at creation.
	// +optional
	Bootstrap *BootstrapSpec `json:"bootstrap,omitempty"`

	// TombstoneGC collects the records of deleted keys (tombstones) once
	// they are older than a retention (docs/design.md §10). It is on when
	// the field is absent: retention 24h, a pass every hour.
	// +kubebuilder:default={}
	// +optional
	TombstoneGC TombstoneGCSpec `json:"tombstoneGC,omitempty"`
}

// TombstoneGCSpec configures the operator's tombstone collection. A pass
// runs only while the cluster is stable (no membership change, no restore,
// not paused, every member serving); membership changes wait for a pass in
// progress. A pass writes each old tombstone to every member, installs the
// next epoch with raised floors and waits for its fence, then removes the
// records from every member (docs/design.md §10).
type TombstoneGCSpec struct {
	// Retention is how old a tombstone must be to be collected: how long
	// after a delete its key still shows it as deleted to a reader that
	// compares versions (a key recreated after collection starts at a
	// version above every one it had). At least 1m.
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1m')",message="tombstoneGC.retention must be at least 1m"
	// +optional
	Retention *metav1.Duration `json:"retention,omitempty"`

	// Interval is how often a pass starts (counted from the start of the
	// last one). At least 10s.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('10s')",message="tombstoneGC.interval must be at least 10s"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// BatchSize is the most tombstones one step of a pass handles: written
	// to every member, covered by one floor epoch, then removed. A pass
	// runs batches until no old tombstone is left or the operator's pass
	// timeout (2m by default) ends it; the next pass goes on a minute later.
	// +kubebuilder:default=1000
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	BatchSize int32 `json:"batchSize,omitempty"`

	// KeysPerSecond paces a pass: the most candidate tombstones it handles
	// per second, checked after each batch (0: as fast as it can). A pass
	// at full speed takes a large share of the cluster's write throughput
	// while it runs (docs/bench/tombstone-gc.md); pacing trades a longer
	// pass for less of a dip.
	// +kubebuilder:validation:Minimum=0
	// +optional
	KeysPerSecond int32 `json:"keysPerSecond,omitempty"`

	// Suspend stops new passes. A pass in progress finishes (it is bounded
	// by the operator's pass timeout), and the floor epoch of an
	// interrupted pass is still installed and fenced: it is recorded in
	// status.configuration already.
	// +optional
	Suspend bool `json:"suspend,omitempty"`
}

// PodMetadata is extra metadata of the acceptor pods.
type PodMetadata struct {
	// Labels added to the acceptor pods.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// Annotations added to the acceptor pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// TLSMode says who issues the acceptors' and clients' certificates.
// +kubebuilder:validation:Enum=Operator;CertManager;Disabled
type TLSMode string

const (
	// TLSModeOperator: the operator keeps a CA of its own in the Secret
	// <cluster>-ca and issues, renews and rotates every certificate.
	TLSModeOperator TLSMode = "Operator"
	// TLSModeCertManager: cert-manager issues them (one Certificate per
	// acceptor pod, one for the operator, one per client) from
	// spec.tls.issuerRef; the operator copies the acceptors' pairs into the
	// Secret the pods mount.
	TLSModeCertManager TLSMode = "CertManager"
	// TLSModeDisabled: no TLS. Traffic is plaintext and unauthenticated:
	// whoever reaches the gRPC port can read and write every key and change
	// the membership. The TLSReady condition says so, and a Warning event is
	// emitted.
	TLSModeDisabled TLSMode = "Disabled"
)

// TLSSpec configures mutual TLS between proposers, the operator and the
// acceptors. Every identity is a certificate of the cluster's CA whose
// Subject Organization carries its role (kshaka:admin for the operator,
// kshaka:client for applications).
//
// Changing the mode restarts every acceptor, one at a time (a rolling
// update); clients must switch between plaintext and TLS at the same time.
//
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'CertManager' || has(self.issuerRef)",message="tls.issuerRef is required when tls.mode is CertManager"
// +kubebuilder:validation:XValidation:rule="!has(self.issuerRef) || (has(self.mode) && self.mode == 'CertManager')",message="tls.issuerRef is only used when tls.mode is CertManager"
// +kubebuilder:validation:XValidation:rule="!has(self.renewBefore) || !has(self.duration) || duration(self.renewBefore) < duration(self.duration)",message="tls.renewBefore must be shorter than tls.duration"
// +kubebuilder:validation:XValidation:rule="!has(self.caDuration) || !has(self.duration) || duration(self.caDuration) > duration(self.duration)",message="tls.caDuration must be longer than tls.duration"
type TLSSpec struct {
	// Mode: Operator (default), CertManager or Disabled.
	// +kubebuilder:default=Operator
	// +optional
	Mode TLSMode `json:"mode,omitempty"`

	// IssuerRef is the cert-manager Issuer or ClusterIssuer that signs the
	// certificates; required in mode CertManager, and only there.
	// +optional
	IssuerRef *cmmeta.IssuerReference `json:"issuerRef,omitempty"`

	// Duration is how long each acceptor and client certificate is valid.
	// At least 1h.
	// +kubebuilder:default="2160h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1h')",message="tls.duration must be at least 1h"
	// +optional
	Duration *metav1.Duration `json:"duration,omitempty"`

	// RenewBefore is how long before its expiry a certificate is renewed.
	// At least 5m, and shorter than duration.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5m')",message="tls.renewBefore must be at least 5m"
	// +optional
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// CADuration is how long the CA the operator makes is valid (mode
	// Operator). Longer than duration: the operator rotates the CA by
	// itself once it would expire within duration.
	// +kubebuilder:default="87600h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:Pattern=`^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`
	// +optional
	CADuration *metav1.Duration `json:"caDuration,omitempty"`

	// ExtraClients are names of additional client identities: each gets a
	// Secret <cluster>-client-<name> (ca.crt, tls.crt, tls.key) with
	// O=kshaka:client and CN=<name>, renewed like the others, so each
	// application can have a certificate of its own. Removing a name
	// deletes its Secret; its certificate stays valid until it expires (or
	// the CA is rotated).
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:XValidation:rule="self.all(n, n != 'tls')",message="tls.extraClients cannot name tls: <cluster>-client-tls is the default client Secret"
	// +optional
	ExtraClients []ClientName `json:"extraClients,omitempty"`
}

// ClientName is the name of an extra client identity: a DNS label.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=63
// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
type ClientName string

// NetworkPolicySpec configures the NetworkPolicy the operator keeps for the
// acceptor pods. It admits, on the gRPC port, the clients and the operator;
// on the health port, anyone (the kubelet's probes come from the node); on
// the metrics port, the metrics selector. The Admin service shares the gRPC
// port with the data path, so that only the operator may change the
// membership is enforced by the certificates' roles, not by the policy:
// the policy limits who reaches the port at all.
type NetworkPolicySpec struct {
	// Enabled: the operator creates the NetworkPolicy (default); false
	// deletes it.
	// +kubebuilder:default=true
	// +optional
	Enabled *bool `json:"enabled,omitempty"`

	// ClientSelector selects the pods that may reach the gRPC port, in the
	// namespaces clientNamespaceSelector selects. Unset: every pod there.
	// +optional
	ClientSelector *metav1.LabelSelector `json:"clientSelector,omitempty"`

	// ClientNamespaceSelector selects the namespaces clients run in. Unset:
	// the cluster's own namespace.
	// +optional
	ClientNamespaceSelector *metav1.LabelSelector `json:"clientNamespaceSelector,omitempty"`

	// OperatorSelector is where the operator runs. Unset namespaceSelector:
	// the operator's own namespace (by its kubernetes.io/metadata.name
	// label); unset podSelector: every pod there.
	// +optional
	OperatorSelector *PeerSelector `json:"operatorSelector,omitempty"`

	// MetricsSelector is who may scrape the metrics port. Unset
	// namespaceSelector: the cluster's own namespace; unset podSelector:
	// every pod there.
	// +optional
	MetricsSelector *PeerSelector `json:"metricsSelector,omitempty"`
}

// PeerSelector selects pods by namespace and labels, as a NetworkPolicy
// peer does.
type PeerSelector struct {
	// NamespaceSelector selects namespaces; see the field using it for
	// what unset means.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	// PodSelector selects pods in those namespaces; unset: every pod.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`
}

// StorageSpec is the persistent volume of each acceptor.
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storage.storageClassName is immutable: existing volume claims cannot move to another class"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.size) || (has(self.size) && quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0)",message="storage.size cannot shrink: a volume claim can only grow"
// +kubebuilder:validation:XValidation:rule="has(self.wal) == has(oldSelf.wal)",message="storage.wal cannot be added or removed after creation: a StatefulSet's volume claim templates are fixed, and the acceptors' logs live where they were created"
type StorageSpec struct {
	// StorageClassName of the volume claims; unset: the cluster default.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// Size of each acceptor's volume. It may grow (see storage), never
	// shrink.
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="storage.size must be positive"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`

	// WAL puts the acceptor's write-ahead log on a volume of its own (a
	// faster disk, or to keep the log's fsyncs off the data volume): a
	// claim wal-<pod> mounted at /var/lib/kshaka-wal and passed as
	// --wal-dir. It cannot be added or removed after creation; its size
	// may grow like storage.size. The two claims are one member's storage:
	// losing either is losing the disk, and the operator deletes both
	// together.
	// +optional
	WAL *VolumeSpec `json:"wal,omitempty"`
}

// VolumeSpec is a persistent volume of each acceptor besides its data
// volume.
// +kubebuilder:validation:XValidation:rule="has(self.storageClassName) == has(oldSelf.storageClassName) && (!has(self.storageClassName) || self.storageClassName == oldSelf.storageClassName)",message="storageClassName is immutable: existing volume claims cannot move to another class"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.size) || (has(self.size) && quantity(string(self.size)).compareTo(quantity(string(oldSelf.size))) >= 0)",message="size cannot shrink: a volume claim can only grow"
type VolumeSpec struct {
	// StorageClassName of the volume claims; unset: the cluster default.
	// +optional
	StorageClassName *string `json:"storageClassName,omitempty"`

	// Size of each volume.
	// +kubebuilder:default="1Gi"
	// +kubebuilder:validation:XValidation:rule="quantity(string(self)).isGreaterThan(quantity('0'))",message="size must be positive"
	// +optional
	Size *resource.Quantity `json:"size,omitempty"`
}

// ServiceSpec is the client Service.
type ServiceSpec struct {
	// Port of the acceptors' gRPC server, on the pods and on both Services.
	// It cannot be changed after creation: it is part of every member's
	// address.
	// +kubebuilder:default=7400
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="service.port is immutable: it is part of every member's address"
	// +optional
	Port int32 `json:"port,omitempty"`

	// Type of the client Service.
	// +kubebuilder:default=ClusterIP
	// +kubebuilder:validation:Enum=ClusterIP;NodePort;LoadBalancer
	// +optional
	Type corev1.ServiceType `json:"type,omitempty"`
}

// Condition types of a KshakaCluster.
const (
	// ConditionAvailable: a prepare quorum and an accept quorum of the
	// current configuration are serving.
	ConditionAvailable = "Available"
	// ConditionProgressing: the operator is moving the cluster towards the
	// spec (creating objects, changing membership).
	ConditionProgressing = "Progressing"
	// ConditionDegraded: something needs attention — a member is
	// unreachable, lost its disk, or a step is blocked.
	ConditionDegraded = "Degraded"
	// ConditionMembershipChanging: a membership transition is in progress.
	ConditionMembershipChanging = "MembershipChanging"
	// ConditionTLSReady: every certificate the acceptors and clients need
	// is issued and valid. False with reason TLSDisabled when spec.tls.mode
	// is Disabled: traffic is then plaintext and unauthenticated.
	ConditionTLSReady = "TLSReady"
	// ConditionNetworkPolicyReady: the NetworkPolicy is in place (or
	// disabled by spec.networkPolicy.enabled).
	ConditionNetworkPolicyReady = "NetworkPolicyReady"
	// ConditionReady: the cluster is what the spec asks for and serves
	// clients. True when all of these hold: the spec is valid (no
	// InvalidSpec); the cluster is not paused; Available is True and every
	// member of the configuration is serving (quorum Healthy) with
	// spec.replicas members; no membership change, rolling update or
	// volume resize is in progress (Progressing is False); TLSReady is True
	// (or TLS is Disabled); NetworkPolicyReady is True (or disabled); and,
	// with spec.bootstrap.fromBackup, the restore is Completed. The reason
	// names the first unmet requirement, the message all of them. GitOps
	// tools (Argo CD, Flux) and `kubectl wait --for=condition=Ready` wait
	// for it.
	ConditionReady = "Ready"
	// ConditionRestored: spec.bootstrap.fromBackup has been restored
	// (absent when the cluster was not bootstrapped from a backup).
	ConditionRestored = "Restored"
	// ConditionTombstoneGC: the outcome of the last tombstone collection
	// pass (True: it completed; False with reason GCFailed, GCSuspended or
	// GCWaiting). It does not enter Ready.
	ConditionTombstoneGC = "TombstoneGC"
)

// Quorum health, shown as a printer column.
const (
	// QuorumHealthy: every member of the current configuration is serving.
	QuorumHealthy = "Healthy"
	// QuorumDegraded: quorums are available but some member is not serving.
	QuorumDegraded = "Degraded"
	// QuorumLost: no quorum of the current configuration is serving.
	QuorumLost = "Lost"
	// QuorumUnknown: there is no configuration yet.
	QuorumUnknown = "Unknown"
)

// Configuration is a membership configuration (docs/design.md §3) as recorded in
// status: the epoch, the members, and the quorums of the prepare set P and
// the accept set S.
type Configuration struct {
	// Epoch orders configurations.
	Epoch int64 `json:"epoch"`
	// Members of P ∪ S, sorted by ID.
	// +listType=atomic
	// +optional
	Members []ConfigMember `json:"members,omitempty"`
	// PrepareQuorum (qp) is how many members of P a prepare needs.
	PrepareQuorum int32 `json:"prepareQuorum"`
	// AcceptQuorum (qa) is how many members of S an accept needs.
	AcceptQuorum int32 `json:"acceptQuorum"`
	// RemovedBallot is the configuration's GC floor R: every ballot up to
	// it is refused on a key that has no record (docs/design.md §10). It
	// only grows from one epoch to the next. Absent: none.
	// +optional
	RemovedBallot *BallotRecord `json:"removedBallot,omitempty"`
	// VersionFloor is the configuration's GC version floor VF: a key
	// recreated after its tombstone was collected starts above it. It only
	// grows from one epoch to the next.
	// +kubebuilder:validation:Minimum=0
	// +optional
	VersionFloor int64 `json:"versionFloor,omitempty"`
}

// BallotRecord is a ballot as status records it.
type BallotRecord struct {
	// Counter is the ballot's counter (a wall clock in microseconds).
	// +kubebuilder:validation:Minimum=0
	Counter int64 `json:"counter"`
	// Proposer is the ballot's proposer ID, decimal (it is a 64-bit
	// unsigned number).
	// +kubebuilder:validation:Pattern=`^[0-9]{1,20}$`
	Proposer string `json:"proposer"`
}

// ConfigMember is one member of a configuration.
type ConfigMember struct {
	// ID is the member's pod name.
	ID string `json:"id"`
	// Address is the host:port proposers dial.
	Address string `json:"address"`
	// Incarnation is the acceptor's storage identity: 16 lowercase hex
	// digits.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{16}$`
	// +optional
	Incarnation string `json:"incarnation,omitempty"`
	// Prepare: the member is in the prepare set P.
	// +optional
	Prepare bool `json:"prepare,omitempty"`
	// Accept: the member is in the accept set S.
	// +optional
	Accept bool `json:"accept,omitempty"`
}

// MemberStatus is what the operator last observed of one acceptor pod.
type MemberStatus struct {
	// Ordinal of the pod in the StatefulSet.
	Ordinal int32 `json:"ordinal"`
	// PodName of the acceptor.
	PodName string `json:"podName"`
	// Address the operator dials (and proposers dial when it is a member).
	// +optional
	Address string `json:"address,omitempty"`
	// Incarnation the acceptor reports (16 hex digits); empty when it could
	// not be reached.
	// +optional
	Incarnation string `json:"incarnation,omitempty"`
	// AcknowledgedEpoch is the epoch of the configuration the acceptor
	// reports now (0 when it could not be reached). HighestAcknowledged is
	// the record the operator keeps.
	// +optional
	AcknowledgedEpoch int64 `json:"acknowledgedEpoch,omitempty"`
	// HighestAcknowledged is the operator's record of the highest epoch
	// this pod's acceptor has acknowledged, with the incarnation it was
	// acknowledged by. It is kept while the acceptor cannot be reached and
	// never lowered for the same incarnation: an acceptor that comes back
	// with that incarnation reporting a lower epoch had its volume rolled
	// back, and is retired and replaced like a lost disk (docs/design.md §4
	// "Rolled-back disks").
	// +optional
	HighestAcknowledged *AcknowledgedEpochRecord `json:"highestAcknowledged,omitempty"`
	// Ready: the pod is Ready.
	// +optional
	Ready bool `json:"ready,omitempty"`
	// Reachable: the operator reached the acceptor's Admin API.
	// +optional
	Reachable bool `json:"reachable,omitempty"`
	// Admitted: the acceptor's configuration lists its incarnation.
	// +optional
	Admitted bool `json:"admitted,omitempty"`
	// Message explains a member that is not serving.
	// +optional
	Message string `json:"message,omitempty"`
}

// AcknowledgedEpochRecord is the highest epoch one incarnation has acknowledged,
// as the operator observed it.
type AcknowledgedEpochRecord struct {
	// Incarnation that acknowledged Epoch: 16 lowercase hex digits.
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{16}$`
	Incarnation string `json:"incarnation"`
	// Epoch is the highest epoch the incarnation has reported.
	// +kubebuilder:validation:Minimum=0
	Epoch int64 `json:"epoch"`
}

// TransitionKind is the kind of a membership transition.
// +kubebuilder:validation:Enum=Bootstrap;Add;Remove;Readdress
type TransitionKind string

const (
	// TransitionBootstrap installs the first configuration.
	TransitionBootstrap TransitionKind = "Bootstrap"
	// TransitionAdd adds one member (docs/design.md §5 "Add x").
	TransitionAdd TransitionKind = "Add"
	// TransitionRemove removes one member (docs/design.md §5 "Remove x").
	TransitionRemove TransitionKind = "Remove"
	// TransitionReaddress installs the same membership with updated
	// addresses (PodIP mode, after a pod got a new IP).
	TransitionReaddress TransitionKind = "Readdress"
)

// TransitionReason says why a transition was started.
// +kubebuilder:validation:Enum=Bootstrap;ScaleUp;ScaleDown;Replace;AddressChanged
type TransitionReason string

// Reasons of a transition.
const (
	ReasonBootstrap      TransitionReason = "Bootstrap"
	ReasonScaleUp        TransitionReason = "ScaleUp"
	ReasonScaleDown      TransitionReason = "ScaleDown"
	ReasonReplace        TransitionReason = "Replace"
	ReasonAddressChanged TransitionReason = "AddressChanged"
)

// TransitionStep is the step a transition is at. Steps are recorded before
// they are carried out; each one checks live state, so repeating it is
// harmless.
// +kubebuilder:validation:Enum=StartMember;InstallJoint;Rescan;InstallFinal;RemovePod;DeleteVolume
type TransitionStep string

const (
	// StepStartMember: the new member's pod is being created; waiting for
	// it to report its incarnation.
	StepStartMember TransitionStep = "StartMember"
	// StepInstallJoint: installing the joint configuration (epoch e+1) and
	// waiting for its fence.
	StepInstallJoint TransitionStep = "InstallJoint"
	// StepRescan: running the identity change on every key under the joint
	// configuration, from RescanCursor on.
	StepRescan TransitionStep = "Rescan"
	// StepInstallFinal: installing the final configuration and waiting for
	// its fence.
	StepInstallFinal TransitionStep = "InstallFinal"
	// StepRemovePod: the removed member is retired; waiting for its pod to
	// be gone.
	StepRemovePod TransitionStep = "RemovePod"
	// StepDeleteVolume: deleting the removed member's PersistentVolumeClaim.
	StepDeleteVolume TransitionStep = "DeleteVolume"
)

// Transition is the membership change in progress.
type Transition struct {
	// Kind of the change.
	Kind TransitionKind `json:"kind"`
	// Reason the change was started.
	Reason TransitionReason `json:"reason"`
	// Member being added or removed (its incarnation is empty until a new
	// member reports one).
	// +optional
	Member *ConfigMember `json:"member,omitempty"`
	// Step the change is at.
	Step TransitionStep `json:"step"`
	// From is the stable configuration the change started from (none for a
	// bootstrap).
	// +optional
	From *Configuration `json:"from,omitempty"`
	// RescanCursor is the last key whose rescan is complete; the rescan
	// resumes after it.
	// +optional
	RescanCursor []byte `json:"rescanCursor,omitempty"`
	// KeysRescanned counts the keys rescanned so far; every one of them
	// was touched (an identity change).
	// +optional
	KeysRescanned int64 `json:"keysRescanned,omitempty"`
	// KeysEstimated is the acceptors' estimate of the number of keys when
	// the rescan started, for a progress percentage.
	// +optional
	KeysEstimated int64 `json:"keysEstimated,omitempty"`
	// StartedAt is when the change was started.
	// +optional
	StartedAt *metav1.Time `json:"startedAt,omitempty"`
}

// KshakaClusterStatus is the observed state of a KshakaCluster and the
// operator's record of the membership procedure.
type KshakaClusterStatus struct {
	// ObservedGeneration is the generation of the spec last acted upon.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Available, Progressing, Degraded,
	// MembershipChanging, TLSReady, NetworkPolicyReady, Restored,
	// TombstoneGC.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// Replicas is the number of members of the current configuration.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the number of members that are serving.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Selector is the label selector of the acceptor pods (for the scale
	// subresource).
	// +optional
	Selector string `json:"selector,omitempty"`
	// Quorum summarises quorum health: Healthy, Degraded, Lost or Unknown.
	// +optional
	Quorum string `json:"quorum,omitempty"`

	// Configuration is the configuration the operator installed last (or is
	// installing: see Transition).
	// +optional
	Configuration *Configuration `json:"configuration,omitempty"`
	// Members is what the operator observed of each acceptor pod.
	// +listType=atomic
	// +optional
	Members []MemberStatus `json:"members,omitempty"`
	// RetiredIncarnations are incarnations whose storage is gone; they are
	// never admitted again (docs/design.md §4).
	// +listType=set
	// +optional
	RetiredIncarnations []string `json:"retiredIncarnations,omitempty"`
	// Transition is the membership change in progress, if any.
	// +optional
	Transition *Transition `json:"transition,omitempty"`

	// TLS is what the operator observed of the cluster's certificates.
	// +optional
	TLS *TLSStatus `json:"tls,omitempty"`

	// Restore is the progress of spec.bootstrap.fromBackup.
	// +optional
	Restore *RestoreStatus `json:"restore,omitempty"`

	// TombstoneGC is the record of the tombstone collection: the pass in
	// progress and the outcome of the last one.
	// +optional
	TombstoneGC *TombstoneGCStatus `json:"tombstoneGC,omitempty"`
}

// GCStep is the step a tombstone collection pass is at. The step is
// recorded before it is carried out.
// +kubebuilder:validation:Enum=Tombstones;InstallFloor;Collect
type GCStep string

const (
	// GCStepTombstones: listing old tombstones and writing each to every
	// member (an identity change whose accept needs every member).
	GCStepTombstones GCStep = "Tombstones"
	// GCStepInstallFloor: the configuration with raised floors
	// (status.configuration, FloorEpoch) is being installed and fenced.
	GCStepInstallFloor GCStep = "InstallFloor"
	// GCStepCollect: removing the written tombstones from every member.
	GCStepCollect GCStep = "Collect"
)

// TombstoneGCPass is a collection pass in progress. While it is recorded
// no membership change starts. An operator restart resumes it: at
// InstallFloor it first finishes installing and fencing FloorEpoch (the
// configuration is already in status); any other step is started again
// from the listing, which is harmless (the identity change may be
// repeated, floors only grow, and a collect is conditional on the record
// being the tombstone the floors cover).
type TombstoneGCPass struct {
	// Step the pass is at.
	Step GCStep `json:"step"`
	// StartedAt is when the pass started.
	StartedAt metav1.Time `json:"startedAt"`
	// FloorEpoch is the epoch of the floor configuration being installed
	// (step InstallFloor).
	// +optional
	FloorEpoch int64 `json:"floorEpoch,omitempty"`
}

// TombstoneGCStatus is what the operator records of tombstone collection.
type TombstoneGCStatus struct {
	// Pass is the pass in progress, if any.
	// +optional
	Pass *TombstoneGCPass `json:"pass,omitempty"`
	// LastPassStart is when the last pass started.
	// +optional
	LastPassStart *metav1.Time `json:"lastPassStart,omitempty"`
	// LastPassEnd is when the last pass ended, successfully or not.
	// +optional
	LastPassEnd *metav1.Time `json:"lastPassEnd,omitempty"`
	// KeysScanned is how many keys the last pass listed.
	// +optional
	KeysScanned int64 `json:"keysScanned,omitempty"`
	// TombstonesCollected is how many tombstones the last pass removed
	// from every member.
	// +optional
	TombstonesCollected int64 `json:"tombstonesCollected,omitempty"`
	// Skipped is how many old tombstones the last pass left for a later
	// one: not written to every member, or kept by a member's collect.
	// +optional
	Skipped int64 `json:"skipped,omitempty"`
	// CutShort: the last pass ran out of time (the operator's pass
	// timeout) with old tombstones left; the next one starts a minute
	// after it ended.
	// +optional
	CutShort bool `json:"cutShort,omitempty"`
	// TotalCollected counts the tombstones collected by every pass.
	// +optional
	TotalCollected int64 `json:"totalCollected,omitempty"`
	// LastError is why the last pass failed; empty when it succeeded.
	// +optional
	LastError string `json:"lastError,omitempty"`
	// ConsecutiveFailures counts the passes that failed in a row.
	// +optional
	ConsecutiveFailures int32 `json:"consecutiveFailures,omitempty"`
}

// TLSStatus is what the operator observed of the cluster's certificates.
type TLSStatus struct {
	// Mode in force.
	// +optional
	Mode TLSMode `json:"mode,omitempty"`
	// ClientSecretName is the Secret applications mount to reach the
	// acceptors (ca.crt, tls.crt, tls.key; O=kshaka:client).
	// +optional
	ClientSecretName string `json:"clientSecretName,omitempty"`
	// ExtraClientSecretNames are the Secrets of spec.tls.extraClients.
	// +listType=atomic
	// +optional
	ExtraClientSecretNames []string `json:"extraClientSecretNames,omitempty"`
	// CANotAfter is when the CA expires (mode Operator).
	// +optional
	CANotAfter *metav1.Time `json:"caNotAfter,omitempty"`
	// AcceptorsNotAfter is when the first acceptor certificate expires.
	// +optional
	AcceptorsNotAfter *metav1.Time `json:"acceptorsNotAfter,omitempty"`
	// ClientsNotAfter is when the first of the operator's and the clients'
	// certificates expires.
	// +optional
	ClientsNotAfter *metav1.Time `json:"clientsNotAfter,omitempty"`
	// LastRenewalTime is when the newest certificate was issued.
	// +optional
	LastRenewalTime *metav1.Time `json:"lastRenewalTime,omitempty"`
	// CARotation is the step of the CA rotation in progress (mode
	// Operator): DistributingTrust (every trust bundle gets the new CA
	// beside the old), Reissuing (every certificate is reissued by the new
	// CA), DroppingOldCA (the old CA leaves the bundles). Empty: none.
	// +optional
	CARotation string `json:"caRotation,omitempty"`
}

// KshakaCluster is a CASPaxos store: a StatefulSet of acceptors whose
// membership the operator changes one member at a time.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=kc;kshaka,categories=kshaka
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.spec.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Epoch",type=integer,JSONPath=`.status.configuration.epoch`
// +kubebuilder:printcolumn:name="Quorum",type=string,JSONPath=`.status.quorum`
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="TLS",type=string,JSONPath=`.status.tls.mode`
// +kubebuilder:printcolumn:name="Step",type=string,JSONPath=`.status.transition.step`,priority=1
// +kubebuilder:printcolumn:name="Client-Secret",type=string,JSONPath=`.status.tls.clientSecretName`,priority=1
// +kubebuilder:printcolumn:name="Certs-Expire",type=string,JSONPath=`.status.tls.acceptorsNotAfter`,priority=1
// +kubebuilder:printcolumn:name="GC-Collected",type=integer,JSONPath=`.status.tombstoneGC.totalCollected`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type KshakaCluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +kubebuilder:default={}
	// +optional
	Spec KshakaClusterSpec `json:"spec,omitempty"`
	// +optional
	Status KshakaClusterStatus `json:"status,omitempty"`
}

// KshakaClusterList contains a list of KshakaCluster.
//
// +kubebuilder:object:root=true
type KshakaClusterList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []KshakaCluster `json:"items"`
}
