package controllers

import (
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kshaka-io/kshaka/internal/pki"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// secretStore plays the API server for the TLS planners: it holds the
// Secrets, applies a plan's writes and deletes (each write conditional on
// the resourceVersion, as the reconciler's are), and hands them back as a
// TLSSecrets.
type secretStore struct {
	t       *testing.T
	c       *kshakav1alpha1.KshakaCluster
	secrets map[string]*corev1.Secret
	rv      int
}

func newStore(t *testing.T, c *kshakav1alpha1.KshakaCluster) *secretStore {
	return &secretStore{t: t, c: c, secrets: map[string]*corev1.Secret{}}
}

func (s *secretStore) observed() TLSSecrets {
	out := TLSSecrets{Extras: map[string]*corev1.Secret{}, Issued: map[string]*corev1.Secret{}}
	for name, sec := range s.secrets {
		sec = sec.DeepCopy()
		switch name {
		case CASecretName(s.c):
			out.CA = sec
		case AcceptorTLSSecretName(s.c):
			out.Acceptor = sec
		case OperatorTLSSecretName(s.c):
			out.Operator = sec
		case ClientTLSSecretName(s.c):
			out.Client = sec
		default:
			if n, ok := sec.Annotations[annotationExtraClient]; ok {
				out.Extras[n] = sec
			}
		}
	}
	return out
}

// apply carries out the first n writes (all when n < 0) and, when all
// writes were carried out, the deletes.
func (s *secretStore) apply(p TLSPlan, n int) {
	s.t.Helper()
	if n < 0 || n > len(p.Writes) {
		n = len(p.Writes)
	}
	for _, w := range p.Writes[:n] {
		old, exists := s.secrets[w.Name]
		switch {
		case w.ResourceVersion == "" && exists:
			s.t.Fatalf("plan creates Secret %s, which exists", w.Name)
		case w.ResourceVersion != "" && (!exists || old.ResourceVersion != w.ResourceVersion):
			s.t.Fatalf("plan updates Secret %s from a stale version", w.Name)
		}
		w = w.DeepCopy()
		s.rv++
		w.ResourceVersion = fmt.Sprint(s.rv)
		if w.UID == "" {
			w.UID = types.UID("uid-" + w.Name)
		}
		s.secrets[w.Name] = w
	}
	if n == len(p.Writes) {
		for _, d := range p.Deletes {
			delete(s.secrets, d.Name)
		}
	}
}

func (s *secretStore) input(now time.Time) TLSInput {
	pods := map[int32]PodInfo{}
	for ord := range s.c.Spec.Replicas {
		pods[ord] = PodInfo{Name: PodName(s.c, ord), IP: podIP(ord), TLS: true}
	}
	return TLSInput{Cluster: s.c, Secrets: s.observed(), Pods: pods, Ordinals: s.c.Spec.Replicas, Now: now, Propagation: time.Minute}
}

// converge plans and applies until a plan writes nothing, and returns the
// last plan.
func (s *secretStore) converge(now time.Time) TLSPlan {
	s.t.Helper()
	for range 10 {
		p := PlanTLS(s.input(now))
		if p.Condition.Status != metav1.ConditionTrue {
			s.t.Fatalf("TLSReady %s/%s: %s", p.Condition.Status, p.Condition.Reason, p.Condition.Message)
		}
		if len(p.Writes) == 0 && len(p.Deletes) == 0 {
			return p
		}
		s.apply(p, -1)
	}
	s.t.Fatal("the TLS plan does not settle")
	return TLSPlan{}
}

func parseLeaf(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	certs, err := pki.ParseCertificates(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0]
}

func pool(t *testing.T, bundle []byte) *x509.CertPool {
	t.Helper()
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(bundle) {
		t.Fatal("empty bundle")
	}
	return p
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// TestPlanOperatorTLSIssues: from nothing, the CA and every certificate are
// issued, with the names, roles and usages docs/design.md §9 lists, and a
// second plan writes nothing.
func TestPlanOperatorTLSIssues(t *testing.T) {
	c := newCluster(3)
	st := newStore(t, c)
	p := PlanTLS(st.input(t0))
	var names []string
	for _, w := range p.Writes {
		names = append(names, w.Name)
		if len(w.OwnerReferences) != 1 || w.OwnerReferences[0].UID != c.UID || w.Labels[LabelInstance] != "kc" || w.Labels[LabelManagedBy] != managerName {
			t.Errorf("Secret %s: owner %v, labels %v", w.Name, w.OwnerReferences, w.Labels)
		}
	}
	if want := []string{"kc-ca", "kc-acceptor-tls", "kc-operator-tls", "kc-client-tls"}; !slices.Equal(names, want) {
		t.Fatalf("writes %v, want %v (the CA first)", names, want)
	}
	st.apply(p, -1)
	sec := st.observed()
	caPool := pool(t, sec.CA.Data[KeyCACert])

	acc := sec.Acceptor
	if len(acc.Data) != 1+2*3 {
		t.Fatalf("acceptor Secret keys %v", keys(acc.Data))
	}
	for ord := range int32(3) {
		pod := PodName(c, ord)
		leaf := parseLeaf(t, acc.Data[PodCertKey(pod)])
		for _, name := range []string{pod + ".kc-peers.ns.svc", pod + ".kc-peers.ns.svc.cluster.local", "kc", "kc.ns.svc", "kc-peers.ns.svc.cluster.local", podIP(ord)} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool, CurrentTime: t0, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("%s's certificate for %s: %v", pod, name, err)
			}
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
			t.Errorf("%s's server certificate verifies as a client certificate", pod)
		}
	}
	for name, want := range map[*corev1.Secret]pki.Role{sec.Operator: pki.RoleAdmin, sec.Client: pki.RoleClient} {
		leaf := parseLeaf(t, name.Data[corev1.TLSCertKey])
		if got := pki.RoleOf(leaf); got != want || name.Type != corev1.SecretTypeTLS {
			t.Errorf("Secret %s: role %v (want %v), type %s", name.Name, got, want, name.Type)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: caPool, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Errorf("Secret %s: %v", name.Name, err)
		}
		if string(name.Data[KeyCACert]) != string(sec.CA.Data[KeyCACert]) {
			t.Errorf("Secret %s: ca.crt is not the CA", name.Name)
		}
	}
	if p.Status.ClientSecretName != "kc-client-tls" || p.Status.CANotAfter == nil || p.Status.AcceptorsNotAfter == nil || p.Status.ClientsNotAfter == nil {
		t.Fatalf("status %+v", p.Status)
	}
	if want := t0.Add(CertDuration(c)); !p.Status.AcceptorsNotAfter.Time.Equal(want) {
		t.Fatalf("acceptors expire %v, want %v", p.Status.AcceptorsNotAfter, want)
	}
	if !hasEvent(p.Events, EventCertificateIssued, "kc-0, kc-1, kc-2") {
		t.Fatalf("events %+v", p.Events)
	}
	again := st.converge(t0.Add(time.Hour))
	if want := CertDuration(c) - RenewBefore(c) - time.Hour; again.RequeueAfter != want {
		t.Fatalf("requeue after %v, want %v (the next renewal)", again.RequeueAfter, want)
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func hasEvent(evs []Event, reason, substr string) bool {
	return slices.ContainsFunc(evs, func(e Event) bool { return e.Reason == reason && strings.Contains(e.Message, substr) })
}

// TestPlanOperatorTLSRenews: a certificate is renewed within renewBefore of
// its expiry, not before; a pod's new IP reissues that pod's pair only; a
// pod the StatefulSet is about to create gets its pair first.
func TestPlanOperatorTLSRenews(t *testing.T) {
	c := newCluster(3)
	st := newStore(t, c)
	st.converge(t0)
	before := st.observed()

	due := t0.Add(CertDuration(c) - RenewBefore(c))
	if p := PlanTLS(st.input(due.Add(-time.Minute))); len(p.Writes) != 0 {
		t.Fatalf("renewed a minute early: %v", p.Events)
	}
	p := PlanTLS(st.input(due))
	if len(p.Writes) != 3 || !hasEvent(p.Events, EventCertificateRenewed, "kc-0 (expires") || !hasEvent(p.Events, EventCertificateRenewed, "kc-operator-tls") {
		t.Fatalf("at the renewal time: %d writes, events %+v", len(p.Writes), p.Events)
	}
	st.apply(p, -1)
	after := st.observed()
	if string(after.CA.Data[KeyCACert]) != string(before.CA.Data[KeyCACert]) {
		t.Fatal("renewal replaced the CA")
	}
	leaf := parseLeaf(t, after.Acceptor.Data["kc-0.crt"])
	if !leaf.NotAfter.Equal(due.Add(CertDuration(c))) {
		t.Fatalf("renewed certificate expires %v", leaf.NotAfter)
	}

	// kc-1 comes back with a new IP.
	in := st.input(due)
	in.Pods[1] = PodInfo{Name: "kc-1", IP: "10.9.9.9", TLS: true}
	p = PlanTLS(in)
	if len(p.Writes) != 1 || !hasEvent(p.Events, EventCertificateRenewed, "kc-1 (it does not name the pod's IP 10.9.9.9)") {
		t.Fatalf("new IP: %d writes, events %+v", len(p.Writes), p.Events)
	}
	w := p.Writes[0]
	if string(w.Data["kc-0.crt"]) != string(after.Acceptor.Data["kc-0.crt"]) || !parseLeaf(t, w.Data["kc-1.crt"]).IPAddresses[0].Equal([]byte{10, 9, 9, 9}) {
		t.Fatal("the new IP reissued the wrong pairs")
	}
	// A pod without an IP yet keeps its certificate.
	in = st.input(due)
	in.Pods[2] = PodInfo{Name: "kc-2"}
	if p := PlanTLS(in); len(p.Writes) != 0 {
		t.Fatalf("a pod without an IP reissued: %+v", p.Events)
	}
	// Scaling to 5: kc-3 and kc-4 get pairs before their pods exist.
	in = st.input(due)
	in.Ordinals = 5
	p = PlanTLS(in)
	if len(p.Writes) != 1 || p.Writes[0].Data["kc-4.crt"] == nil || !hasEvent(p.Events, EventCertificateIssued, "kc-3, kc-4") {
		t.Fatalf("scale up: %d writes, events %+v", len(p.Writes), p.Events)
	}
}

// TestPlanOperatorTLSRotatesCA runs a CA rotation with the operator killed
// after a random number of the writes of every plan, and checks at every
// point that each stored certificate verifies with every stored trust
// bundle (no client or acceptor ever sees a peer it cannot verify), that no
// certificate is reissued before the new CA reached every bundle and the
// propagation time passed, and that the rotation ends with the new CA
// alone.
func TestPlanOperatorTLSRotatesCA(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 1))
			c := newCluster(3)
			c.Spec.TLS.ExtraClients = []kshakav1alpha1.ClientName{"app"}
			st := newStore(t, c)
			st.converge(t0)
			oldCA := string(st.observed().CA.Data[KeyCACert])
			c.Annotations = map[string]string{AnnotationRotateCA: "1"}

			now := t0
			var steps []string
			for i := 0; ; i++ {
				if i > 200 {
					t.Fatalf("the rotation does not finish; steps %v", steps)
				}
				p := PlanTLS(st.input(now))
				if p.Condition.Status != metav1.ConditionTrue {
					t.Fatalf("TLSReady %s: %s", p.Condition.Reason, p.Condition.Message)
				}
				if len(steps) == 0 || steps[len(steps)-1] != p.Status.CARotation {
					steps = append(steps, p.Status.CARotation)
				}
				if len(p.Writes) == 0 && len(p.Deletes) == 0 {
					if p.Status.CARotation == "" && i > 0 {
						break
					}
					now = now.Add(20 * time.Second)
					continue
				}
				st.apply(p, rng.IntN(len(p.Writes)+1))
				checkTrust(t, st, now)
			}
			sec := st.observed()
			newCA := string(sec.CA.Data[KeyCACert])
			if cas, err := pki.ParseCertificates(sec.CA.Data[KeyCACert]); err != nil || newCA == oldCA || sec.CA.Data[KeyPreviousCA] != nil || len(cas) != 1 {
				t.Fatal("the rotation did not end with the new CA alone")
			}
			for _, s := range []*corev1.Secret{sec.Acceptor, sec.Operator, sec.Client, sec.Extras["app"]} {
				if string(s.Data[KeyCACert]) != newCA {
					t.Errorf("Secret %s still trusts the old CA", s.Name)
				}
			}
			if want := []string{RotationDistributingTrust, RotationReissuing, RotationDroppingOldCA, ""}; !slices.Equal(steps, want) {
				t.Fatalf("steps %v, want %v", steps, want)
			}
			// The annotation is recorded: no second rotation.
			if p := PlanTLS(st.input(now.Add(time.Hour))); len(p.Writes) != 0 {
				t.Fatalf("a second rotation: %+v", p.Events)
			}
		})
	}
}

// checkTrust: every certificate stored verifies with every trust bundle
// stored.
func checkTrust(t *testing.T, st *secretStore, now time.Time) {
	t.Helper()
	sec := st.observed()
	bundles := map[string][]byte{}
	var leaves = map[string][]byte{}
	for _, s := range []*corev1.Secret{sec.Acceptor, sec.Operator, sec.Client, sec.Extras["app"]} {
		if s == nil {
			continue
		}
		bundles[s.Name] = s.Data[KeyCACert]
		for k, v := range s.Data {
			if strings.HasSuffix(k, ".crt") && k != KeyCACert {
				leaves[s.Name+"/"+k] = v
			}
		}
	}
	for bn, b := range bundles {
		roots := pool(t, b)
		for ln, l := range leaves {
			if _, err := parseLeaf(t, l).Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Fatalf("%s does not verify with the bundle of %s: %v", ln, bn, err)
			}
		}
	}
}

// TestPlanOperatorTLSRotatesExpiringCA: a CA that would cut the next
// certificates short is rotated without being asked.
func TestPlanOperatorTLSRotatesExpiringCA(t *testing.T) {
	c := newCluster(1)
	c.Spec.TLS.CADuration = &metav1.Duration{Duration: 3 * CertDuration(c)}
	st := newStore(t, c)
	st.converge(t0)
	p := PlanTLS(st.input(t0.Add(2*CertDuration(c) + time.Minute)))
	if p.Status.CARotation != RotationDistributingTrust || !hasEvent(p.Events, EventCARotation, "within spec.tls.duration") {
		t.Fatalf("rotation %q, events %+v", p.Status.CARotation, p.Events)
	}
}

// TestPlanOperatorTLSExtraClients: each extra client gets its Secret with
// its CN and the client role; a name removed loses its Secret.
func TestPlanOperatorTLSExtraClients(t *testing.T) {
	c := newCluster(1)
	c.Spec.TLS.ExtraClients = []kshakav1alpha1.ClientName{"billing", "reports"}
	st := newStore(t, c)
	p := st.converge(t0)
	if !slices.Equal(p.Status.ExtraClientSecretNames, []string{"kc-client-billing", "kc-client-reports"}) {
		t.Fatalf("status %+v", p.Status)
	}
	leaf := parseLeaf(t, st.secrets["kc-client-billing"].Data[corev1.TLSCertKey])
	if leaf.Subject.CommonName != "billing" || pki.RoleOf(leaf) != pki.RoleClient {
		t.Fatalf("billing's certificate: %v", leaf.Subject)
	}
	c.Spec.TLS.ExtraClients = []kshakav1alpha1.ClientName{"reports"}
	p = PlanTLS(st.input(t0))
	if len(p.Deletes) != 1 || p.Deletes[0].Name != "kc-client-billing" || len(p.Writes) != 0 {
		t.Fatalf("writes %d, deletes %v", len(p.Writes), p.Deletes)
	}
}

// TestPlanTLSBadInput: what the operator does not own or cannot read is
// reported, and nothing is written over it.
func TestPlanTLSBadInput(t *testing.T) {
	c := newCluster(1)
	st := newStore(t, c)
	st.converge(t0)

	broken := newStore(t, c)
	for k, v := range st.secrets {
		broken.secrets[k] = v.DeepCopy()
	}
	broken.secrets["kc-ca"].Data[KeyCAKey] = []byte("not a key")
	p := PlanTLS(broken.input(t0))
	if p.Condition.Status != metav1.ConditionFalse || p.Condition.Reason != ReasonTLSError || !strings.Contains(p.Condition.Message, "Secret kc-ca holds no usable CA") || len(p.Writes) != 0 {
		t.Fatalf("condition %+v, %d writes", p.Condition, len(p.Writes))
	}

	foreign := newStore(t, c)
	foreign.secrets["kc-client-tls"] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kc-client-tls", Namespace: "ns", ResourceVersion: "1"}}
	p = PlanTLS(foreign.input(t0))
	if p.Condition.Reason != ReasonTLSError || !strings.Contains(p.Condition.Message, "is not owned by this KshakaCluster") || len(p.Writes) != 0 {
		t.Fatalf("condition %+v, %d writes", p.Condition, len(p.Writes))
	}
}

// TestPlanTLSDisabled: mode Disabled says loudly that traffic is plaintext,
// with a Warning event the first time only.
func TestPlanTLSDisabled(t *testing.T) {
	c := newCluster(3)
	c.Spec.TLS.Mode = kshakav1alpha1.TLSModeDisabled
	p := PlanTLS(TLSInput{Cluster: c, Now: t0})
	if p.Condition.Status != metav1.ConditionFalse || p.Condition.Reason != ReasonTLSDisabled || !strings.Contains(p.Condition.Message, "plaintext and unauthenticated") {
		t.Fatalf("condition %+v", p.Condition)
	}
	if len(p.Events) != 1 || p.Events[0].Type != corev1.EventTypeWarning || len(p.Writes) != 0 {
		t.Fatalf("events %+v, writes %d", p.Events, len(p.Writes))
	}
	c.Status.Conditions = []metav1.Condition{p.Condition}
	if p := PlanTLS(TLSInput{Cluster: c, Now: t0}); len(p.Events) != 0 {
		t.Fatalf("the warning repeats: %+v", p.Events)
	}
}
