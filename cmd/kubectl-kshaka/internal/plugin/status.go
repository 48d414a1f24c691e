package plugin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// StatusSchema names the version of the Status struct; it changes only if
// a field is renamed or changes meaning (new fields may be added without).
const StatusSchema = "kubectl-kshaka/status/v1"

// Status is what `kubectl kshaka status -o json|yaml` prints: the operator's
// record of one KshakaCluster (its status), digested. Its fields are the
// plugin's interface: a field keeps its name and meaning for the schema
// version; new fields may be added. Times are RFC 3339, durations seconds.
type Status struct {
	// Schema is StatusSchema.
	Schema string `json:"schema"`
	// Cluster and Namespace name the KshakaCluster.
	Cluster   string `json:"cluster"`
	Namespace string `json:"namespace"`
	// Generation of the spec, and the generation the operator last acted
	// on (status.observedGeneration).
	Generation         int64 `json:"generation"`
	ObservedGeneration int64 `json:"observedGeneration"`
	// Replicas is spec.replicas, the number of members wanted.
	Replicas int32 `json:"replicas"`
	// Paused: spec.paused is set; the operator changes nothing.
	Paused bool `json:"paused"`
	// Quorum is the health of the current configuration.
	Quorum Quorum `json:"quorum"`
	// Members are the acceptor pods and the configuration's members, by
	// ordinal.
	Members []Member `json:"members"`
	// RetiredIncarnations are incarnations whose storage is gone; they are
	// never admitted again.
	RetiredIncarnations []string `json:"retiredIncarnations"`
	// RetireAsserted are the incarnations of the kshaka.io/retire-incarnations
	// annotation (kubectl kshaka retire) not retired yet.
	RetireAsserted []string `json:"retireAsserted"`
	// Transition is the membership change in progress; null when none.
	Transition *Transition `json:"transition"`
	// Restore is the progress of spec.bootstrap.fromBackup; null when the
	// cluster was not bootstrapped from a backup.
	Restore *Restore `json:"restore"`
	// TombstoneGC is the tombstone collection record; null before the
	// operator recorded a pass.
	TombstoneGC *TombstoneGC `json:"tombstoneGC"`
	// TLS is the certificates' state; null before the operator recorded it.
	TLS *TLS `json:"tls"`
	// Conditions of the cluster.
	Conditions []Condition `json:"conditions"`
	// Events are the most recent Warning events of the cluster, its pods,
	// volume claims, StatefulSet and backups, newest first.
	Events []Event `json:"events"`
}

// Quorum is the health of the current configuration: its prepare set P
// and accept set S, their quorums, and how many members serve.
type Quorum struct {
	// Health is status.quorum: Healthy (every member serving), Degraded
	// (quorums form, some member is not serving), Lost (no quorum) or
	// Unknown (no configuration yet).
	Health string `json:"health"`
	// Epoch of the current configuration; 0 before the first.
	Epoch int64 `json:"epoch"`
	// Members is the number of members of P ∪ S.
	Members int `json:"members"`
	// PrepareSet and AcceptSet are the sizes of P and S; PrepareQuorum
	// (qp) and AcceptQuorum (qa) how many of each a round needs.
	PrepareSet    int   `json:"prepareSet"`
	AcceptSet     int   `json:"acceptSet"`
	PrepareQuorum int32 `json:"prepareQuorum"`
	AcceptQuorum  int32 `json:"acceptQuorum"`
	// ServingPrepare and ServingAccept count the members of P and S that
	// serve now (reachable, admitted with their incarnation, healthy).
	ServingPrepare int `json:"servingPrepare"`
	ServingAccept  int `json:"servingAccept"`
	// Tolerates is how many more members may fail, whichever they are,
	// with both quorums still formed: min(servingPrepare − qp,
	// servingAccept − qa); −1 when a quorum is already lost.
	Tolerates int `json:"tolerates"`
	// ToleratesWhenHealthy is the same with every member serving.
	ToleratesWhenHealthy int `json:"toleratesWhenHealthy"`
}

// Member is one acceptor pod, or a member of the configuration without
// one.
type Member struct {
	// Pod is the pod name, which is also the member ID.
	Pod     string `json:"pod"`
	Ordinal int32  `json:"ordinal"`
	// Address is where the operator (and proposers, for a member) dial it.
	Address string `json:"address"`
	// Incarnation is the storage identity the acceptor reports now; "" when
	// it could not be reached.
	Incarnation string `json:"incarnation"`
	// MemberIncarnation is the incarnation the configuration lists for
	// this pod; "" when the pod is not a member.
	MemberIncarnation string `json:"memberIncarnation"`
	// Prepare and Accept: the member is in P, in S.
	Prepare bool `json:"prepare"`
	Accept  bool `json:"accept"`
	// AcknowledgedEpoch is the epoch the acceptor reports (0: unreachable);
	// HighestAcknowledged the operator's record of the highest it reported.
	AcknowledgedEpoch   int64 `json:"acknowledgedEpoch"`
	HighestAcknowledged int64 `json:"highestAcknowledged"`
	// Ready: the pod is Ready. Reachable: the operator reached its Admin
	// API. Admitted: its configuration lists its incarnation.
	Ready     bool `json:"ready"`
	Reachable bool `json:"reachable"`
	Admitted  bool `json:"admitted"`
	// Serving: a member the quorums count now.
	Serving bool `json:"serving"`
	// Message explains a member that is not serving.
	Message string `json:"message"`
}

// Transition is the membership change in progress.
type Transition struct {
	// Kind (Bootstrap, Add, Remove, Readdress), Reason and Step as in
	// status.transition.
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	Step   string `json:"step"`
	// Member is the pod being added or removed, MemberIncarnation its
	// incarnation ("" until a new member reports one).
	Member            string `json:"member"`
	MemberIncarnation string `json:"memberIncarnation"`
	// StartedAt is when the change started; AgeSeconds how long ago.
	StartedAt  *time.Time `json:"startedAt"`
	AgeSeconds int64      `json:"ageSeconds"`
	// KeysRescanned counts the keys rescanned so far; KeysEstimated is the
	// most keys an acceptor held when the rescan started (0: no estimate).
	KeysRescanned int64 `json:"keysRescanned"`
	KeysEstimated int64 `json:"keysEstimated"`
	// RescanPercent is the rescan's progress, 0–100: keysRescanned of
	// keysEstimated while rescanning (at most 99 until it is done), 100
	// after it; null before the rescan or without an estimate.
	RescanPercent *int `json:"rescanPercent"`
}

// Restore is the progress of spec.bootstrap.fromBackup (status.restore).
type Restore struct {
	// Phase: Pending (also before the operator starts it), Running,
	// Completed or Failed.
	Phase string `json:"phase"`
	// Source is the file restored, <claim>/<path>; Backup the KshakaBackup
	// named in the spec ("" for a claim and path).
	Source string `json:"source"`
	Backup string `json:"backup"`
	// Keys restored so far, of EstimatedKeys; Percent 0–100.
	Keys          int64 `json:"keys"`
	EstimatedKeys int64 `json:"estimatedKeys"`
	Percent       int32 `json:"percent"`
	KeysPerSecond int64 `json:"keysPerSecond"`
	// Restored: the Restored condition is True.
	Restored bool `json:"restored"`
	// Message explains the phase.
	Message string `json:"message"`
}

// TombstoneGC is the tombstone collection record (status.tombstoneGC and
// spec.tombstoneGC.suspend).
type TombstoneGC struct {
	// Suspended: spec.tombstoneGC.suspend is set.
	Suspended bool `json:"suspended"`
	// Step of the pass in progress; "" when none.
	Step string `json:"step"`
	// LastPassEnd is when the last pass ended; null before the first.
	LastPassEnd *time.Time `json:"lastPassEnd"`
	// Collected by the last pass, and by every pass.
	Collected      int64 `json:"collected"`
	TotalCollected int64 `json:"totalCollected"`
	// Skipped: old tombstones the last pass left for a later one.
	Skipped int64 `json:"skipped"`
	// Failures in a row, and the last one's error.
	ConsecutiveFailures int32  `json:"consecutiveFailures"`
	LastError           string `json:"lastError"`
}

func buildTombstoneGC(c *kshakav1alpha1.KshakaCluster) *TombstoneGC {
	g := c.Status.TombstoneGC
	if g == nil {
		return nil
	}
	out := &TombstoneGC{Suspended: c.Spec.TombstoneGC.Suspend, Collected: g.TombstonesCollected, TotalCollected: g.TotalCollected,
		Skipped: g.Skipped, ConsecutiveFailures: g.ConsecutiveFailures, LastError: g.LastError}
	if g.Pass != nil {
		out.Step = string(g.Pass.Step)
	}
	if g.LastPassEnd != nil {
		t := g.LastPassEnd.UTC()
		out.LastPassEnd = &t
	}
	return out
}

// TLS is the certificates' state (status.tls).
type TLS struct {
	// Mode: Operator, CertManager or Disabled.
	Mode string `json:"mode"`
	// ClientSecret is the Secret applications mount; ExtraClientSecrets
	// those of spec.tls.extraClients.
	ClientSecret       string   `json:"clientSecret"`
	ExtraClientSecrets []string `json:"extraClientSecrets"`
	// CA, Acceptors and Clients are the first expiries of the CA, of the
	// acceptors' certificates and of the operator's and clients'; null when
	// unknown.
	CA        *Expiry `json:"ca"`
	Acceptors *Expiry `json:"acceptors"`
	Clients   *Expiry `json:"clients"`
	// CARotation is the step of a CA rotation in progress; "" when none.
	CARotation string `json:"caRotation"`
}

// Expiry is when a certificate expires.
type Expiry struct {
	NotAfter time.Time `json:"notAfter"`
	// InSeconds is the time left; negative once it has expired.
	InSeconds int64 `json:"inSeconds"`
}

// Condition is one of the cluster's conditions.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// Event is a Warning event of the cluster or one of its objects.
type Event struct {
	// Object is Kind/name of the object it is about.
	Object  string `json:"object"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Count is how many times it happened; LastSeen the last time.
	Count    int32     `json:"count"`
	LastSeen time.Time `json:"lastSeen"`
}

// BuildStatus digests c's status as observed at now, with the events
// given (already selected and sorted, newest first).
func BuildStatus(c *kshakav1alpha1.KshakaCluster, events []Event, now time.Time) Status {
	st := &c.Status
	s := Status{
		Schema: StatusSchema, Cluster: c.Name, Namespace: c.Namespace,
		Generation: c.Generation, ObservedGeneration: st.ObservedGeneration,
		Replicas: c.Spec.Replicas, Paused: c.Spec.Paused,
		RetiredIncarnations: nonNil(st.RetiredIncarnations),
		RetireAsserted:      []string{},
		Members:             []Member{},
		Conditions:          []Condition{},
		Events:              nonNil(events),
	}
	for _, inc := range splitAnnotation(c.Annotations[annotationRetire]) {
		if !slices.Contains(st.RetiredIncarnations, inc) {
			s.RetireAsserted = append(s.RetireAsserted, inc)
		}
	}
	s.Members = buildMembers(c)
	s.Quorum = buildQuorum(c, s.Members)
	s.Transition = buildTransition(st.Transition, now)
	s.Restore = buildRestore(c)
	s.TLS = buildTLS(st.TLS, now)
	s.TombstoneGC = buildTombstoneGC(c)
	for _, cd := range st.Conditions {
		s.Conditions = append(s.Conditions, Condition{Type: cd.Type, Status: string(cd.Status), Reason: cd.Reason, Message: cd.Message,
			LastTransitionTime: cd.LastTransitionTime.UTC()})
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// splitAnnotation parses the retire annotation: comma-separated
// incarnations, blanks ignored, duplicates dropped, in order.
func splitAnnotation(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func buildMembers(c *kshakav1alpha1.KshakaCluster) []Member {
	st := &c.Status
	byPod := map[string]*Member{}
	var out []*Member
	row := func(pod string, ord int32) *Member {
		if m, ok := byPod[pod]; ok {
			return m
		}
		m := &Member{Pod: pod, Ordinal: ord}
		byPod[pod] = m
		out = append(out, m)
		return m
	}
	for _, r := range st.Members {
		m := row(r.PodName, r.Ordinal)
		m.Address, m.Incarnation, m.AcknowledgedEpoch = r.Address, r.Incarnation, r.AcknowledgedEpoch
		m.Ready, m.Reachable, m.Admitted, m.Message = r.Ready, r.Reachable, r.Admitted, r.Message
		if h := r.HighestAcknowledged; h != nil {
			m.HighestAcknowledged = h.Epoch
		}
	}
	if cfg := st.Configuration; cfg != nil {
		for _, cm := range cfg.Members {
			ord, _ := ordinal(c, cm.ID)
			m := row(cm.ID, ord)
			m.MemberIncarnation, m.Prepare, m.Accept = cm.Incarnation, cm.Prepare, cm.Accept
			if m.Address == "" {
				m.Address = cm.Address
			}
			if _, seen := rowOf(st.Members, cm.ID); !seen && m.Message == "" {
				m.Message = "not observed by the operator"
			}
			m.Serving = m.Reachable && m.Admitted && m.Incarnation == cm.Incarnation && m.Message == "" &&
				!slices.Contains(st.RetiredIncarnations, cm.Incarnation)
		}
	}
	slices.SortStableFunc(out, func(a, b *Member) int { return cmp.Compare(a.Ordinal, b.Ordinal) })
	members := make([]Member, len(out))
	for i, m := range out {
		members[i] = *m
	}
	return members
}

func rowOf(rows []kshakav1alpha1.MemberStatus, pod string) (kshakav1alpha1.MemberStatus, bool) {
	for _, r := range rows {
		if r.PodName == pod {
			return r, true
		}
	}
	return kshakav1alpha1.MemberStatus{}, false
}

func buildQuorum(c *kshakav1alpha1.KshakaCluster, members []Member) Quorum {
	q := Quorum{Health: c.Status.Quorum}
	cfg := c.Status.Configuration
	if cfg == nil {
		if q.Health == "" {
			q.Health = kshakav1alpha1.QuorumUnknown
		}
		q.Tolerates, q.ToleratesWhenHealthy = -1, -1
		return q
	}
	q.Epoch, q.Members, q.PrepareQuorum, q.AcceptQuorum = cfg.Epoch, len(cfg.Members), cfg.PrepareQuorum, cfg.AcceptQuorum
	for _, m := range members {
		if m.Prepare {
			q.PrepareSet++
			if m.Serving {
				q.ServingPrepare++
			}
		}
		if m.Accept {
			q.AcceptSet++
			if m.Serving {
				q.ServingAccept++
			}
		}
	}
	q.Tolerates = max(min(q.ServingPrepare-int(q.PrepareQuorum), q.ServingAccept-int(q.AcceptQuorum)), -1)
	q.ToleratesWhenHealthy = max(min(q.PrepareSet-int(q.PrepareQuorum), q.AcceptSet-int(q.AcceptQuorum)), -1)
	if q.Health == "" {
		switch {
		case q.Tolerates < 0:
			q.Health = kshakav1alpha1.QuorumLost
		case q.ServingPrepare < q.PrepareSet || q.ServingAccept < q.AcceptSet:
			q.Health = kshakav1alpha1.QuorumDegraded
		default:
			q.Health = kshakav1alpha1.QuorumHealthy
		}
	}
	return q
}

// stepOrder is the order of the steps of a transition.
var stepOrder = []kshakav1alpha1.TransitionStep{
	kshakav1alpha1.StepStartMember, kshakav1alpha1.StepInstallJoint, kshakav1alpha1.StepRescan,
	kshakav1alpha1.StepInstallFinal, kshakav1alpha1.StepRemovePod, kshakav1alpha1.StepDeleteVolume,
}

func buildTransition(tr *kshakav1alpha1.Transition, now time.Time) *Transition {
	if tr == nil {
		return nil
	}
	t := &Transition{Kind: string(tr.Kind), Reason: string(tr.Reason), Step: string(tr.Step),
		KeysRescanned: tr.KeysRescanned, KeysEstimated: tr.KeysEstimated}
	if tr.Member != nil {
		t.Member, t.MemberIncarnation = tr.Member.ID, tr.Member.Incarnation
	}
	if tr.StartedAt != nil {
		at := tr.StartedAt.UTC()
		t.StartedAt = &at
		t.AgeSeconds = int64(now.Sub(at) / time.Second)
	}
	rescan := slices.Index(stepOrder, kshakav1alpha1.StepRescan)
	switch step := slices.Index(stepOrder, tr.Step); {
	case tr.Kind == kshakav1alpha1.TransitionBootstrap || tr.Kind == kshakav1alpha1.TransitionReaddress:
		// No rescan.
	case step > rescan:
		p := 100
		t.RescanPercent = &p
	case step == rescan && tr.KeysEstimated > 0:
		p := int(min(99, tr.KeysRescanned*100/tr.KeysEstimated))
		t.RescanPercent = &p
	}
	return t
}

func buildRestore(c *kshakav1alpha1.KshakaCluster) *Restore {
	r := c.Status.Restore
	from := (*kshakav1alpha1.BackupSource)(nil)
	if b := c.Spec.Bootstrap; b != nil {
		from = b.FromBackup
	}
	if r == nil && from == nil {
		return nil
	}
	out := &Restore{}
	if from != nil {
		out.Backup = from.BackupName
		if from.ClaimName != "" {
			out.Source = from.ClaimName + "/" + from.Path
		}
	}
	if r != nil {
		out.Phase, out.Message = string(r.Phase), r.Message
		if r.Source != "" {
			out.Source = r.Source
		}
		p := r.Progress
		out.Keys, out.EstimatedKeys, out.Percent, out.KeysPerSecond = p.Keys, p.EstimatedKeys, p.Percent, p.KeysPerSecond
	}
	for _, cd := range c.Status.Conditions {
		if cd.Type == kshakav1alpha1.ConditionRestored {
			out.Restored = cd.Status == "True"
		}
	}
	if out.Phase == "" {
		// The operator has not started the restore, or recorded only the
		// condition.
		out.Phase = string(kshakav1alpha1.BackupPending)
		if out.Restored {
			out.Phase = string(kshakav1alpha1.BackupCompleted)
		}
	}
	return out
}

func buildTLS(t *kshakav1alpha1.TLSStatus, now time.Time) *TLS {
	if t == nil {
		return nil
	}
	return &TLS{Mode: string(t.Mode), ClientSecret: t.ClientSecretName, ExtraClientSecrets: nonNil(t.ExtraClientSecretNames),
		CA: expiryOf(t.CANotAfter, now), Acceptors: expiryOf(t.AcceptorsNotAfter, now), Clients: expiryOf(t.ClientsNotAfter, now),
		CARotation: t.CARotation}
}

func expiryOf(at *metav1.Time, now time.Time) *Expiry {
	if at == nil || at.IsZero() {
		return nil
	}
	return &Expiry{NotAfter: at.UTC(), InSeconds: int64(at.Sub(now) / time.Second)}
}

// clusterObjects matches the names of the objects of cluster name that
// events may be about: its pods and their volume claims.
func clusterObjects(name string) (pods, claims *regexp.Regexp) {
	q := regexp.QuoteMeta(name)
	return regexp.MustCompile(`^` + q + `-[0-9]+$`), regexp.MustCompile(`^[a-z0-9-]+-` + q + `-[0-9]+$`)
}

// aboutCluster reports whether an event is about the cluster c, its
// StatefulSet, Services, pods or volume claims, or one of the backups.
func aboutCluster(c *kshakav1alpha1.KshakaCluster, backups []string, ref corev1.ObjectReference) bool {
	pods, claims := clusterObjects(c.Name)
	switch ref.Kind {
	case "KshakaCluster":
		return ref.Name == c.Name
	case "StatefulSet", "Service", "PodDisruptionBudget", "NetworkPolicy":
		return ref.Name == c.Name || ref.Name == peerServiceName(c)
	case "Pod":
		return pods.MatchString(ref.Name)
	case "PersistentVolumeClaim":
		return claims.MatchString(ref.Name)
	case "KshakaBackup":
		return slices.Contains(backups, ref.Name)
	}
	return false
}

// eventTime is when an event last happened, whichever API wrote it.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.UTC()
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.UTC()
	case !e.EventTime.IsZero():
		return e.EventTime.UTC()
	}
	return e.CreationTimestamp.UTC()
}

func eventCount(e *corev1.Event) int32 {
	if e.Series != nil && e.Series.Count > 0 {
		return e.Series.Count
	}
	return max(e.Count, 1)
}

// clusterEvents lists the events about c and its objects (Warning ones
// only when warningsOnly), newest first.
func (o *options) clusterEvents(ctx context.Context, c *kshakav1alpha1.KshakaCluster, warningsOnly bool) ([]corev1.Event, error) {
	backups, err := o.backupsOf(ctx, c.Name)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range backups {
		names = append(names, b.Name)
	}
	var list corev1.EventList
	opts := []client.ListOption{client.InNamespace(c.Namespace)}
	if warningsOnly {
		opts = append(opts, client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("type", corev1.EventTypeWarning)})
	}
	if err := o.cl.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("while listing the events of namespace %s: %w", c.Namespace, err)
	}
	var out []corev1.Event
	for _, e := range list.Items {
		if aboutCluster(c, names, e.InvolvedObject) {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b corev1.Event) int { return eventTime(&b).Compare(eventTime(&a)) })
	return out, nil
}

// backupsOf lists the KshakaBackups of cluster name, newest first.
func (o *options) backupsOf(ctx context.Context, name string) ([]kshakav1alpha1.KshakaBackup, error) {
	var list kshakav1alpha1.KshakaBackupList
	if err := o.cl.List(ctx, &list, client.InNamespace(o.namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			// The KshakaBackup CRD is not installed (an older operator).
			return nil, nil
		}
		return nil, fmt.Errorf("while listing the KshakaBackups of namespace %s: %w", o.namespace, err)
	}
	var out []kshakav1alpha1.KshakaBackup
	for _, b := range list.Items {
		if b.Spec.Cluster.Name == name {
			out = append(out, b)
		}
	}
	slices.SortStableFunc(out, func(a, b kshakav1alpha1.KshakaBackup) int {
		return b.CreationTimestamp.Compare(a.CreationTimestamp.Time)
	})
	return out, nil
}

func toEvents(evs []corev1.Event, limit int) []Event {
	out := []Event{}
	for i := range evs {
		if len(out) == limit {
			break
		}
		e := &evs[i]
		out = append(out, Event{Object: e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name, Reason: e.Reason,
			Message: strings.TrimSpace(e.Message), Count: eventCount(e), LastSeen: eventTime(e)})
	}
	return out
}

// statusOf reads cluster name and its Warning events and digests them.
func (o *options) statusOf(ctx context.Context, name string, events int) (Status, *kshakav1alpha1.KshakaCluster, error) {
	c, err := o.getCluster(ctx, name)
	if err != nil {
		return Status{}, nil, err
	}
	var evs []Event
	if events > 0 {
		// The status is worth showing without its events (a user who may
		// not list them).
		if list, err := o.clusterEvents(ctx, c, true); err != nil {
			fmt.Fprintf(o.io.Err, "Warning: the events are left out: %v\n", err)
		} else {
			evs = toEvents(list, events)
		}
	}
	return BuildStatus(c, evs, o.now()), c, nil
}

func newStatusCmd(o *options) *cobra.Command {
	var output string
	var events int
	cmd := &cobra.Command{
		Use:   "status CLUSTER",
		Short: "Show a cluster's members, quorums, transition, certificates and warnings",
		Long: `status shows what the operator recorded of a KshakaCluster: each member (pod,
address, incarnation, epoch it acknowledged, ready, reachable, admitted, why
it is not serving), the configuration's epoch and quorums and how many more
failures it tolerates, the membership change in progress with its rescan
progress, a restore in progress, when the certificates expire, the
conditions, and the most recent Warning events.

-o json and -o yaml print a stable struct (schema kubectl-kshaka/status/v1,
documented in the README), not the raw resource; 'kubectl get kshakacluster
NAME -o yaml' prints that.

It exits 6 when no quorum of the current configuration is serving.`,
		Example: `  kubectl kshaka status example
  kubectl kshaka status example -n prod -o json | jq .quorum.tolerates
  kubectl kshaka status example --events 0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "json" && output != "yaml" && output != "table" {
				return usageErrorf("--output %q: use table, json or yaml", output)
			}
			if events < 0 {
				return usageErrorf("--events %d: use 0 or more", events)
			}
			s, _, err := o.statusOf(cmd.Context(), args[0], events)
			if err != nil {
				return err
			}
			if err := printStatus(o.io.Out, s, output, o.now()); err != nil {
				return err
			}
			if s.Quorum.Health == kshakav1alpha1.QuorumLost {
				return withCode(ExitQuorumLost, fmt.Errorf("no quorum of epoch %d is serving (%d of %d in P serving, %d needed; %d of %d in S, %d needed)",
					s.Quorum.Epoch, s.Quorum.ServingPrepare, s.Quorum.PrepareSet, s.Quorum.PrepareQuorum,
					s.Quorum.ServingAccept, s.Quorum.AcceptSet, s.Quorum.AcceptQuorum))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: table (default), json or yaml")
	cmd.Flags().IntVar(&events, "events", 10, "how many recent Warning events to show (0: none)")
	return cmd
}

func printStatus(w io.Writer, s Status, output string, now time.Time) error {
	switch output {
	case "json":
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := yaml.Marshal(s)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	return writeTable(w, s, now)
}

// ago is a duration in kubectl's short form: "5m", "3d".
func ago(d time.Duration) string { return duration.ShortHumanDuration(d) }

// shorten cuts s to at most n runes, on one line; -o json has it whole.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

func expiry(e *Expiry, now time.Time) string {
	if e == nil {
		return "unknown"
	}
	left := e.NotAfter.Sub(now)
	if left <= 0 {
		return fmt.Sprintf("EXPIRED %s ago (%s)", ago(-left), e.NotAfter.Format(time.RFC3339))
	}
	return fmt.Sprintf("in %s (%s)", ago(left), e.NotAfter.Format(time.RFC3339))
}

// writeTable prints s for a person.
func writeTable(out io.Writer, s Status, now time.Time) error {
	var buf bytes.Buffer
	if err := table(&buf, s, now); err != nil {
		return err
	}
	// Without the padding an empty last column leaves.
	lines := strings.SplitAfter(buf.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(strings.TrimSuffix(l, "\n"), " ")
		if strings.HasSuffix(l, "\n") {
			lines[i] += "\n"
		}
	}
	_, err := io.WriteString(out, strings.Join(lines, ""))
	return err
}

func table(out io.Writer, s Status, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	kv := func(k, format string, args ...any) { fmt.Fprintf(w, "%s:\t%s\n", k, fmt.Sprintf(format, args...)) }

	kv("Cluster", "%s/%s (generation %d, observed %d)", s.Namespace, s.Cluster, s.Generation, s.ObservedGeneration)
	q := s.Quorum
	if q.Epoch == 0 {
		kv("Quorum", "%s: no configuration installed yet", q.Health)
	} else {
		kv("Quorum", "%s: epoch %d, %d members; prepare quorum %d of %d (%d serving), accept quorum %d of %d (%d serving)",
			q.Health, q.Epoch, q.Members, q.PrepareQuorum, q.PrepareSet, q.ServingPrepare, q.AcceptQuorum, q.AcceptSet, q.ServingAccept)
		var tol string
		switch {
		case q.Tolerates < 0:
			tol = "none: quorum is lost"
		case q.Tolerates == 0:
			tol = "0 more failures: one more member down and a quorum is lost"
		default:
			tol = plural(q.Tolerates, "more failure", "more failures")
		}
		kv("Tolerates", "%s (%d with every member serving)", tol, q.ToleratesWhenHealthy)
	}
	kv("Replicas", "%d wanted", s.Replicas)
	if s.Paused {
		kv("Paused", "yes: the operator makes no changes ('kubectl kshaka resume %s')", s.Cluster)
	}
	if t := s.Transition; t != nil {
		line := t.Kind
		if t.Member != "" {
			line += " " + t.Member
		}
		line += fmt.Sprintf(" (%s), step %s", t.Reason, t.Step)
		if t.StartedAt != nil {
			line += fmt.Sprintf(", started %s ago", ago(now.Sub(*t.StartedAt)))
		}
		kv("Transition", "%s", line)
		if t.Step == string(kshakav1alpha1.StepRescan) || t.KeysRescanned > 0 {
			r := fmt.Sprintf("%d keys", t.KeysRescanned)
			if t.KeysEstimated > 0 {
				r += fmt.Sprintf(" of about %d", t.KeysEstimated)
			}
			if t.RescanPercent != nil {
				r += fmt.Sprintf(" (%d%%)", *t.RescanPercent)
			}
			kv("Rescanned", "%s", r)
		}
	} else {
		kv("Transition", "none")
	}
	if r := s.Restore; r != nil {
		from := r.Source
		if r.Backup != "" {
			from = "backup " + r.Backup
			if r.Source != "" {
				from += " (" + r.Source + ")"
			}
		}
		line := fmt.Sprintf("%s from %s", r.Phase, from)
		if r.Keys > 0 || r.EstimatedKeys > 0 {
			line += fmt.Sprintf(": %d keys", r.Keys)
			if r.EstimatedKeys > 0 {
				line += fmt.Sprintf(" of %d (%d%%)", r.EstimatedKeys, r.Percent)
			}
			if r.KeysPerSecond > 0 && r.Phase == string(kshakav1alpha1.BackupRunning) {
				line += fmt.Sprintf(", %d keys/s", r.KeysPerSecond)
			}
		}
		if r.Message != "" {
			line += "; " + r.Message
		}
		kv("Restore", "%s", line)
	}
	if g := s.TombstoneGC; g != nil {
		line := "no pass has ended yet"
		if g.LastPassEnd != nil {
			line = fmt.Sprintf("last pass ended %s ago: %d collected, %d left for later (%d collected in all)",
				ago(now.Sub(*g.LastPassEnd)), g.Collected, g.Skipped, g.TotalCollected)
		}
		if g.Step != "" {
			line += "; a pass is at step " + g.Step + " (membership changes wait)"
		}
		if g.ConsecutiveFailures > 0 {
			line += fmt.Sprintf("; %d failed in a row: %s", g.ConsecutiveFailures, g.LastError)
		}
		if g.Suspended {
			line += "; suspended"
		}
		kv("Tombstone GC", "%s", line)
	}
	if t := s.TLS; t != nil {
		if t.Mode == string(kshakav1alpha1.TLSModeDisabled) {
			kv("TLS", "Disabled: traffic is plaintext and unauthenticated")
		} else {
			kv("TLS", "%s, client Secret %s", t.Mode, orDash(t.ClientSecret))
			if t.CA != nil || t.Mode == string(kshakav1alpha1.TLSModeOperator) {
				kv("  CA expires", "%s", expiry(t.CA, now))
			}
			kv("  acceptors expire", "%s", expiry(t.Acceptors, now))
			kv("  clients expire", "%s", expiry(t.Clients, now))
			if t.CARotation != "" {
				kv("  CA rotation", "%s", t.CARotation)
			}
		}
	}
	if len(s.RetiredIncarnations) > 0 {
		kv("Retired", "%s", strings.Join(s.RetiredIncarnations, ", "))
	}
	if len(s.RetireAsserted) > 0 {
		kv("Retire asserted", "%s (not retired yet)", strings.Join(s.RetireAsserted, ", "))
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "\nMembers:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  POD\tADDRESS\tINCARNATION\tSETS\tEPOCH\tREADY\tREACHABLE\tADMITTED\tSERVING\tMESSAGE")
	for _, m := range s.Members {
		sets := ""
		if m.Prepare {
			sets += "P"
		}
		if m.Accept {
			sets += "S"
		}
		inc := m.Incarnation
		if m.MemberIncarnation != "" && m.MemberIncarnation != m.Incarnation {
			inc = fmt.Sprintf("%s (member %s)", orDash(m.Incarnation), m.MemberIncarnation)
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", m.Pod, orDash(m.Address), orDash(inc), orDash(sets), m.AcknowledgedEpoch,
			yesNo(m.Ready), yesNo(m.Reachable), yesNo(m.Admitted), yesNo(m.Serving), m.Message)
	}
	if len(s.Members) == 0 {
		fmt.Fprintln(w, "  (none yet)")
	}
	if err := w.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(out, "\nConditions:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
	for _, c := range s.Conditions {
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, ago(now.Sub(c.LastTransitionTime)), c.Message)
	}
	if len(s.Conditions) == 0 {
		fmt.Fprintln(w, "  (none yet)")
	}
	if err := w.Flush(); err != nil {
		return err
	}

	if len(s.Events) == 0 {
		_, err := fmt.Fprintln(out, "\nWarning events: none")
		return err
	}
	fmt.Fprintln(out, "\nWarning events (newest first):")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  LAST SEEN\tOBJECT\tREASON\tCOUNT\tMESSAGE")
	for _, e := range s.Events {
		fmt.Fprintf(w, "  %s ago\t%s\t%s\t%d\t%s\n", ago(now.Sub(e.LastSeen)), e.Object, e.Reason, e.Count, shorten(e.Message, 120))
	}
	return w.Flush()
}
