package controllers

import (
	"context"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

func init() {
	if err := cmv1.AddToScheme(scheme); err != nil {
		panic(err)
	}
}

func (f *fixture) secret(name string) *corev1.Secret {
	f.t.Helper()
	var s corev1.Secret
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &s); err != nil {
		f.t.Fatalf("reading Secret %s: %v", name, err)
	}
	return &s
}

func (f *fixture) patchCluster(modify func(kc *kshakav1alpha1.KshakaCluster)) {
	f.t.Helper()
	kc := f.get()
	patch := client.MergeFrom(kc.DeepCopy())
	modify(kc)
	if err := f.c.Patch(context.Background(), kc, patch); err != nil {
		f.t.Fatal(err)
	}
}

func tlsReady(kc *kshakav1alpha1.KshakaCluster) bool {
	return meta.IsStatusConditionTrue(kc.Status.Conditions, kshakav1alpha1.ConditionTLSReady)
}

// TestEnvtestTLS: by default the cluster runs mutual TLS end to end: the
// operator installs configurations with its admin certificate, a proposer
// with the client certificate of kc-client-tls reads and writes, and the
// Secrets, the StatefulSet's mounts, the NetworkPolicy and the status are
// as docs/design.md §9 says. A scale up finds the new pod's pair written
// before the pod.
func TestEnvtestTLS(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	kc := f.eventually(30*time.Second, "TLSReady", tlsReady)
	st := kc.Status.TLS
	if st == nil || st.Mode != kshakav1alpha1.TLSModeOperator || st.ClientSecretName != "kc-client-tls" || st.CANotAfter == nil || st.AcceptorsNotAfter == nil {
		t.Fatalf("status.tls %+v", st)
	}
	keys := map[string][]byte{}
	f.write(cfg, "k", 10, keys)
	f.checkAll(cfg, keys)

	ca := f.secret("kc-ca")
	roots := pool(t, ca.Data[KeyCACert])
	for _, name := range []string{"kc-ca", "kc-acceptor-tls", "kc-operator-tls", "kc-client-tls"} {
		s := f.secret(name)
		if !metav1.IsControlledBy(s, kc) || s.Labels[LabelInstance] != "kc" {
			t.Errorf("Secret %s: owners %v, labels %v", name, s.OwnerReferences, s.Labels)
		}
	}
	acc := f.secret("kc-acceptor-tls")
	for _, pod := range []string{"kc-0", "kc-1", "kc-2"} {
		leaf := parseLeaf(t, acc.Data[PodCertKey(pod)])
		for _, name := range []string{pod + ".kc-peers." + f.ns + ".svc", pod + ".kc-peers." + f.ns + ".svc.cluster.local", "kc." + f.ns + ".svc"} {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				t.Errorf("%s's certificate for %s: %v", pod, name, err)
			}
		}
	}
	if got := pki.RoleOf(parseLeaf(t, f.secret("kc-operator-tls").Data[corev1.TLSCertKey])); got != pki.RoleAdmin {
		t.Errorf("the operator's role %v", got)
	}

	var sts appsv1.StatefulSet
	if err := f.c.Get(context.Background(), f.kc, &sts); err != nil {
		t.Fatal(err)
	}
	if v := sts.Spec.Template.Spec.Volumes; len(v) != 1 || v[0].Secret == nil || v[0].Secret.SecretName != "kc-acceptor-tls" {
		t.Fatalf("StatefulSet volumes %+v", v)
	}

	var np networkingv1.NetworkPolicy
	if err := f.c.Get(context.Background(), f.kc, &np); err != nil {
		t.Fatalf("the NetworkPolicy: %v", err)
	}
	if !metav1.IsControlledBy(&np, kc) || len(np.Spec.Ingress) != 3 || np.Spec.Ingress[0].Ports[0].Port.IntVal != kc.Spec.Service.Port ||
		np.Spec.Ingress[0].From[1].NamespaceSelector.MatchLabels[LabelNamespaceName] != "kshaka-system" {
		t.Fatalf("NetworkPolicy %+v", np.Spec)
	}
	if !meta.IsStatusConditionTrue(kc.Status.Conditions, kshakav1alpha1.ConditionNetworkPolicyReady) {
		t.Fatalf("conditions %+v", kc.Status.Conditions)
	}

	f.scale(4)
	cfg = f.waitConverged()
	f.checkAll(cfg, keys)
	if f.secret("kc-acceptor-tls").Data["kc-3.crt"] == nil {
		t.Fatal("kc-3 has no pair")
	}
	f.eventuallyEvents(EventCertificateIssued)

	// Disabling the NetworkPolicy deletes it.
	f.patchCluster(func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.NetworkPolicy.Enabled = new(bool) })
	f.eventually(30*time.Second, "the NetworkPolicy to go", func(kc *kshakav1alpha1.KshakaCluster) bool {
		err := f.c.Get(context.Background(), f.kc, &networkingv1.NetworkPolicy{})
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionNetworkPolicyReady)
		return apierrors.IsNotFound(err) && c != nil && c.Reason == ReasonNetworkPolicyDisabled
	})
}

// clock is a settable offset from the wall clock for the reconciler. The
// certificates stay valid for the real TLS handshakes: the test moves the
// clock back to make certificates issued "long ago", never forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time      { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) set(d time.Duration) { c.offset.Store(int64(d)) }

// TestEnvtestTLSRenewal: certificates issued so long ago that they are
// within renewBefore of their expiry are renewed, with an event, and the
// cluster keeps working on the new ones.
func TestEnvtestTLSRenewal(t *testing.T) {
	clk := &clock{}
	// Issued a minute less than renewBefore before expiry, as seen now.
	clk.set(-(defaultCertDuration - defaultRenewBefore + time.Minute))
	f := newFixtureMode(t, 3, kshakav1alpha1.AddressModePodIP, func(r *Reconciler) { r.Now = clk.now })
	cfg := f.waitConverged()
	old := parseLeaf(t, f.secret("kc-acceptor-tls").Data["kc-0.crt"])
	keys := map[string][]byte{}
	f.write(cfg, "k", 5, keys)

	clk.set(0)
	f.eventually(60*time.Second, "kc-0's certificate to be renewed", func(kc *kshakav1alpha1.KshakaCluster) bool {
		leaf := parseLeaf(t, f.secret("kc-acceptor-tls").Data["kc-0.crt"])
		return leaf.SerialNumber.Cmp(old.SerialNumber) != 0 && leaf.NotAfter.After(old.NotAfter.Add(time.Hour)) &&
			kc.Status.TLS != nil && kc.Status.TLS.AcceptorsNotAfter != nil && kc.Status.TLS.AcceptorsNotAfter.After(old.NotAfter.Add(time.Hour))
	})
	f.eventuallyEvents(EventCertificateRenewed)
	cfg = f.waitConverged()
	f.checkAll(cfg, keys)
}

// TestEnvtestTLSRotateCA: the rotate-ca annotation replaces the CA; at the
// end every Secret trusts the new CA alone, every certificate is its, and
// the cluster kept working.
func TestEnvtestTLSRotateCA(t *testing.T) {
	f := newFixture(t, 3)
	cfg := f.waitConverged()
	keys := map[string][]byte{}
	f.write(cfg, "before", 5, keys)
	oldCA := string(f.secret("kc-ca").Data[KeyCACert])

	f.patchCluster(func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Annotations = map[string]string{AnnotationRotateCA: "2026-03"}
	})
	f.eventually(60*time.Second, "the rotation to finish", func(kc *kshakav1alpha1.KshakaCluster) bool {
		ca := f.secret("kc-ca")
		return string(ca.Data[KeyCACert]) != oldCA && ca.Data[KeyPreviousCA] == nil && kc.Status.TLS != nil && kc.Status.TLS.CARotation == "" &&
			string(f.secret("kc-client-tls").Data[KeyCACert]) == string(ca.Data[KeyCACert])
	})
	newCA := f.secret("kc-ca").Data[KeyCACert]
	for _, name := range []string{"kc-acceptor-tls", "kc-operator-tls", "kc-client-tls"} {
		s := f.secret(name)
		if string(s.Data[KeyCACert]) != string(newCA) {
			t.Errorf("Secret %s does not trust the new CA alone", name)
		}
		for k, v := range s.Data {
			if strings.HasSuffix(k, ".crt") && k != KeyCACert && !pki.SignedBy(v, newCA) {
				t.Errorf("%s/%s is not signed by the new CA", name, k)
			}
		}
	}
	var n int
	for _, r := range f.events() {
		if r == EventCARotation {
			n++
		}
	}
	if n < 4 {
		t.Errorf("%d CARotation events, want one per step (4)", n)
	}
	cfg = f.waitConverged()
	f.waitServesTrusted(cfg)
	f.checkAll(cfg, keys)
	f.write(cfg, "after", 5, keys)
	f.checkAll(cfg, keys)
}

// TestEnvtestTLSDisabledThenEnabled: mode Disabled says loudly that the
// cluster is plaintext; switching it to Operator on the running cluster
// issues the certificates, and while its pods are restarted one by one (as
// a rolling update does) the operator reaches both the plaintext and the
// TLS pods and keeps the cluster serving.
func TestEnvtestTLSDisabledThenEnabled(t *testing.T) {
	f := newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.TLS.Mode = kshakav1alpha1.TLSModeDisabled
	})
	cfg := f.waitConverged()
	kc := f.eventually(30*time.Second, "the TLSDisabled condition", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionTLSReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == ReasonTLSDisabled
	})
	if !strings.Contains(meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionTLSReady).Message, "plaintext and unauthenticated") {
		t.Fatalf("conditions %+v", kc.Status.Conditions)
	}
	f.eventuallyEvents(EventTLSDisabled)
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: "kc-ca"}, &corev1.Secret{}); !apierrors.IsNotFound(err) {
		t.Fatalf("mode Disabled made a CA: %v", err)
	}
	keys := map[string][]byte{}
	f.write(cfg, "plain", 5, keys)

	f.patchCluster(func(kc *kshakav1alpha1.KshakaCluster) { kc.Spec.TLS.Mode = kshakav1alpha1.TLSModeOperator })
	f.eventually(30*time.Second, "TLSReady", tlsReady)
	// kc-2 restarts with TLS; kc-0 and kc-1 still serve plaintext. A
	// membership change now installs configurations on both kinds and
	// rescans through both.
	f.restartPod("kc-2")
	f.scale(4)
	cfg = f.waitConverged()
	if cfg.Epoch != 3 {
		t.Fatalf("scaling a mixed cluster to 4: %s", cfg)
	}
	for _, pod := range []string{"kc-1", "kc-0"} {
		f.restartPod(pod)
	}
	f.scale(3)
	cfg = f.waitConverged()
	if cfg.Epoch != 5 {
		t.Fatalf("scaling back to 3 over TLS: %s", cfg)
	}
	for _, pod := range []string{"kc-0", "kc-1", "kc-2"} {
		var p corev1.Pod
		if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: pod}, &p); err != nil || !PodServesTLS(&p) {
			t.Fatalf("%s serves TLS: %v (%v)", pod, PodServesTLS(&p), err)
		}
	}
	f.checkAll(cfg, keys)
}

// restartPod deletes the pod and waits for its successor to be ready.
func (f *fixture) restartPod(name string) {
	f.t.Helper()
	var p corev1.Pod
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &p); err != nil {
		f.t.Fatal(err)
	}
	if err := f.c.Delete(context.Background(), &p); err != nil {
		f.t.Fatal(err)
	}
	f.eventually(30*time.Second, name+" to come back ready", func(*kshakav1alpha1.KshakaCluster) bool {
		var q corev1.Pod
		err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: name}, &q)
		return err == nil && q.UID != p.UID && podReady(&q)
	})
}

var installCertManager sync.Once

// TestEnvtestCertManager: without cert-manager's CRD the cluster says that
// cert-manager is not installed; with it, the operator creates a
// Certificate per pod, for itself and for the clients, and once they are
// issued (the test plays cert-manager's CA issuer) copies the pairs into
// kc-acceptor-tls; the cluster then runs on them.
func TestEnvtestCertManager(t *testing.T) {
	issuer := &cmmeta.IssuerReference{Name: "kshaka-ca", Kind: "Issuer"}
	withCM := func(kc *kshakav1alpha1.KshakaCluster) {
		kc.Spec.TLS.Mode = kshakav1alpha1.TLSModeCertManager
		kc.Spec.TLS.IssuerRef = issuer
	}
	cfg, _ := startEnv(t)
	installed := true
	installCertManager.Do(func() { installed = false })
	var f *fixture
	if !installed {
		f = newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, withCM)
		f.eventually(30*time.Second, "the CertManagerNotInstalled condition", func(kc *kshakav1alpha1.KshakaCluster) bool {
			c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionTLSReady)
			return c != nil && c.Reason == ReasonCertManagerNotInstalled && strings.Contains(c.Message, "cert-manager is not installed")
		})
		f.op.stop()
		if _, err := envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: []string{filepath.Join("testdata", "crds")}, ErrorIfPathMissing: true}); err != nil {
			t.Fatalf("installing cert-manager's CRD: %v", err)
		}
		f.op = startOperator(t, f.cfg, f.ns, f.acc)
	} else {
		t.Log("cert-manager's CRD is installed already (-count > 1): the not-installed part is skipped")
		f = newFixtureSpec(t, 3, kshakav1alpha1.AddressModePodIP, withCM)
	}

	ca, err := pki.NewCA("issuer", 10*defaultCertDuration, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kc-0-tls", "kc-1-tls", "kc-2-tls", "kc-client-tls", "kc-operator-tls"}
	var certs cmv1.CertificateList
	f.eventually(60*time.Second, "the Certificates", func(*kshakav1alpha1.KshakaCluster) bool {
		if err := f.c.List(context.Background(), &certs, client.InNamespace(f.ns)); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range certs.Items {
			names = append(names, c.Name)
		}
		slices.Sort(names)
		return slices.Equal(names, want)
	})
	for i := range certs.Items {
		crt := &certs.Items[i]
		if crt.Spec.IssuerRef != *issuer || crt.Spec.SecretTemplate == nil || crt.Spec.SecretTemplate.Labels[LabelInstance] != "kc" {
			t.Fatalf("Certificate %s: %+v", crt.Name, crt.Spec)
		}
		if crt.Name == "kc-operator-tls" && !slices.Equal(crt.Spec.Subject.Organizations, []string{pki.OrgAdmin}) {
			t.Fatalf("the operator's Certificate %+v", crt.Spec)
		}
	}
	f.eventually(30*time.Second, "WaitingForCertManager", func(kc *kshakav1alpha1.KshakaCluster) bool {
		c := meta.FindStatusCondition(kc.Status.Conditions, kshakav1alpha1.ConditionTLSReady)
		return c != nil && c.Reason == ReasonWaitingForCertManager
	})

	// cert-manager issues every Certificate (re-read: the pods' IPs are
	// in them by now or will be reissued; a CA issuer signs what it is
	// asked).
	f.playCertManager(ca)
	cfgm := f.waitConverged()
	f.eventually(30*time.Second, "TLSReady", tlsReady)
	keys := map[string][]byte{}
	f.write(cfgm, "k", 5, keys)
	f.checkAll(cfgm, keys)
	if got := f.secret("kc-acceptor-tls").Data["kc-1.key"]; string(got) != string(f.secret("kc-1-tls").Data[corev1.TLSPrivateKeyKey]) {
		t.Fatal("kc-1's pair was not copied")
	}
}

// playCertManager issues, in the background until the test ends, every
// Certificate of the namespace whose Secret is missing or stale, as
// cert-manager's CA issuer would.
func (f *fixture) playCertManager(ca *pki.CA) {
	stop := make(chan struct{})
	done := make(chan struct{})
	f.t.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var certs cmv1.CertificateList
			if err := f.c.List(context.Background(), &certs, client.InNamespace(f.ns)); err != nil {
				continue
			}
			for i := range certs.Items {
				crt := &certs.Items[i]
				var s corev1.Secret
				err := f.c.Get(context.Background(), types.NamespacedName{Namespace: f.ns, Name: crt.Spec.SecretName}, &s)
				if err == nil && s.Annotations[cmv1.IPSANAnnotationKey] == strings.Join(crt.Spec.IPAddresses, ",") {
					continue
				}
				want := issueFor(f.t, ca, crt, time.Now())
				if apierrors.IsNotFound(err) {
					_ = f.c.Create(context.Background(), want)
					continue
				}
				s.Data, s.Annotations = want.Data, want.Annotations
				_ = f.c.Update(context.Background(), &s)
			}
		}
	}()
}

// TestEnvtestTLSValidation: spec.tls and spec.networkPolicy default to
// mutual TLS and a NetworkPolicy, and the API server refuses what cannot
// work with a readable message.
func TestEnvtestTLSValidation(t *testing.T) {
	_, c := startEnv(t)
	ns := newNamespace(t, c)
	ctx := context.Background()
	create := func(name string, modify func(*kshakav1alpha1.TLSSpec)) error {
		kc := &kshakav1alpha1.KshakaCluster{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		kc.Spec.Replicas = 3
		modify(&kc.Spec.TLS)
		return c.Create(ctx, kc)
	}
	d := func(s string) *metav1.Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return &metav1.Duration{Duration: v}
	}
	if err := create("defaults", func(*kshakav1alpha1.TLSSpec) {}); err != nil {
		t.Fatal(err)
	}
	var kc kshakav1alpha1.KshakaCluster
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "defaults"}, &kc); err != nil {
		t.Fatal(err)
	}
	tlsSpec := kc.Spec.TLS
	if tlsSpec.Mode != kshakav1alpha1.TLSModeOperator || tlsSpec.Duration.Duration != defaultCertDuration || tlsSpec.RenewBefore.Duration != defaultRenewBefore ||
		tlsSpec.CADuration.Duration != defaultCADuration || kc.Spec.NetworkPolicy.Enabled == nil || !*kc.Spec.NetworkPolicy.Enabled {
		t.Fatalf("defaults: tls %+v, networkPolicy %+v", tlsSpec, kc.Spec.NetworkPolicy)
	}
	issuer := &cmmeta.IssuerReference{Name: "ca"}
	for _, tc := range []struct {
		name   string
		modify func(*kshakav1alpha1.TLSSpec)
		want   string
	}{
		{"certmanager without issuer", func(s *kshakav1alpha1.TLSSpec) { s.Mode = kshakav1alpha1.TLSModeCertManager }, "tls.issuerRef is required when tls.mode is CertManager"},
		{"issuer without certmanager", func(s *kshakav1alpha1.TLSSpec) { s.IssuerRef = issuer }, "tls.issuerRef is only used when tls.mode is CertManager"},
		{"mode", func(s *kshakav1alpha1.TLSSpec) { s.Mode = "Mesh" }, `spec.tls.mode: Unsupported value: "Mesh"`},
		{"renew after expiry", func(s *kshakav1alpha1.TLSSpec) { s.RenewBefore = d("3000h") }, "tls.renewBefore must be shorter than tls.duration"},
		{"short duration", func(s *kshakav1alpha1.TLSSpec) { s.Duration, s.RenewBefore = d("30m"), d("10m") }, "tls.duration must be at least 1h"},
		{"short renewBefore", func(s *kshakav1alpha1.TLSSpec) { s.RenewBefore = d("1m") }, "tls.renewBefore must be at least 5m"},
		{"short CA", func(s *kshakav1alpha1.TLSSpec) { s.CADuration = d("100h") }, "tls.caDuration must be longer than tls.duration"},
		{"reserved client", func(s *kshakav1alpha1.TLSSpec) { s.ExtraClients = []kshakav1alpha1.ClientName{"tls"} }, "tls.extraClients cannot name tls"},
		{"client name", func(s *kshakav1alpha1.TLSSpec) { s.ExtraClients = []kshakav1alpha1.ClientName{"Billing_App"} }, "spec.tls.extraClients[0] in body should match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := create("bad-"+strings.ReplaceAll(tc.name, " ", "-"), tc.modify)
			if err == nil || !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an Invalid error containing %q", err, tc.want)
			}
		})
	}
	if err := create("certmanager", func(s *kshakav1alpha1.TLSSpec) { s.Mode, s.IssuerRef = kshakav1alpha1.TLSModeCertManager, issuer }); err != nil {
		t.Fatalf("a valid CertManager cluster: %v", err)
	}
}

// waitServesTrusted waits until every member completes a handshake with a
// client that trusts only the client Secret's bundle. The fixture's
// TrustPropagation is a millisecond, so a CA rotation does not wait for the
// acceptors to reload their files (they poll every two seconds); this is
// the wait the real propagation delay stands for.
func (f *fixture) waitServesTrusted(cfg membership.Config) {
	f.t.Helper()
	poll(f.t, 30*time.Second, "every acceptor to serve a certificate the client bundle trusts", func() (bool, string) {
		for _, m := range cfg.Members {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p, err := proposer.New(ctx, proposer.Config{Endpoints: []string{m.Addr}, TLS: f.clientTLS()})
			cancel()
			if err != nil {
				return false, fmt.Sprintf("%s: %v", m.ID, err)
			}
			p.Close()
		}
		return true, ""
	})
}
