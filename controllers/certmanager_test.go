package controllers

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	cmv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kshaka-io/kshaka/internal/pki"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

func certManagerCluster(replicas int32) *kshakav1alpha1.KshakaCluster {
	c := newCluster(replicas)
	c.Spec.TLS.Mode = kshakav1alpha1.TLSModeCertManager
	c.Spec.TLS.IssuerRef = &cmmeta.IssuerReference{Name: "kshaka-ca", Kind: "ClusterIssuer", Group: "cert-manager.io"}
	return c
}

func TestPlanCertManager(t *testing.T) {
	c := certManagerCluster(2)
	in := CertManagerInput{TLSInput: TLSInput{Cluster: c, Pods: map[int32]PodInfo{0: {Name: "kc-0", IP: "10.0.0.1"}}, Ordinals: 2, Now: t0}}

	p := PlanCertManager(in)
	if p.Condition.Reason != ReasonCertManagerNotInstalled || !strings.Contains(p.Condition.Message, "cert-manager is not installed") || len(p.Certificates) != 0 {
		t.Fatalf("without cert-manager: %+v", p.Condition)
	}

	in.Installed = true
	p = PlanCertManager(in)
	var names []string
	for _, crt := range p.Certificates {
		names = append(names, crt.Name)
		if crt.Spec.IssuerRef.Name != "kshaka-ca" || crt.Spec.IssuerRef.Kind != "ClusterIssuer" || crt.Spec.Duration.Duration != CertDuration(c) ||
			crt.Spec.RenewBefore.Duration != RenewBefore(c) || crt.Spec.SecretTemplate.Labels[LabelInstance] != "kc" || crt.OwnerReferences[0].UID != c.UID {
			t.Errorf("Certificate %s: %+v", crt.Name, crt.Spec)
		}
	}
	if want := []string{"kc-0-tls", "kc-1-tls", "kc-operator-tls", "kc-client-tls"}; !slices.Equal(names, want) {
		t.Fatalf("Certificates %v, want %v", names, want)
	}
	kc0, op := p.Certificates[0], p.Certificates[2]
	if !slices.Contains(kc0.Spec.DNSNames, "kc-0.kc-peers.ns.svc") || !slices.Equal(kc0.Spec.IPAddresses, []string{"10.0.0.1"}) ||
		!slices.Equal(kc0.Spec.Usages, []cmv1.KeyUsage{cmv1.UsageDigitalSignature, cmv1.UsageServerAuth}) {
		t.Fatalf("kc-0's Certificate %+v", kc0.Spec)
	}
	if len(p.Certificates[1].Spec.IPAddresses) != 0 {
		t.Fatalf("kc-1 has no pod yet, but its Certificate names IPs %v", p.Certificates[1].Spec.IPAddresses)
	}
	if !slices.Equal(op.Spec.Subject.Organizations, []string{pki.OrgAdmin}) || !slices.Contains(op.Spec.Usages, cmv1.UsageClientAuth) {
		t.Fatalf("the operator's Certificate %+v", op.Spec)
	}
	if p.Condition.Reason != ReasonWaitingForCertManager || !strings.Contains(p.Condition.Message, "kc-0-tls, kc-1-tls, kc-operator-tls, kc-client-tls") {
		t.Fatalf("before issuance: %+v", p.Condition)
	}

	// cert-manager issues; kc-1's pair comes from another CA (an issuer
	// rotating its CA): the bundle holds both.
	ca1, _ := pki.NewCA("one", 10*CertDuration(c), t0)
	ca2, _ := pki.NewCA("two", 10*CertDuration(c), t0)
	in.Secrets.Issued = map[string]*corev1.Secret{}
	for i, crt := range p.Certificates {
		ca := ca1
		if i == 1 {
			ca = ca2
		}
		in.Secrets.Issued[crt.Spec.SecretName] = issueFor(t, ca, crt, t0)
	}
	p = PlanCertManager(in)
	if p.Condition.Status != metav1.ConditionTrue || len(p.Writes) != 1 {
		t.Fatalf("after issuance: %+v, %d writes", p.Condition, len(p.Writes))
	}
	acc := p.Writes[0]
	if acc.Name != "kc-acceptor-tls" || string(acc.Data["kc-1.key"]) != string(in.Secrets.Issued["kc-1-tls"].Data[corev1.TLSPrivateKeyKey]) {
		t.Fatalf("acceptor Secret keys %v", keys(acc.Data))
	}
	if cas, err := pki.ParseCertificates(acc.Data[KeyCACert]); err != nil || len(cas) != 2 {
		t.Fatalf("bundle of %d CAs (%v), want both issuers' CAs", len(cas), err)
	}

	// Scale down to 1: kc-1's Certificate goes.
	acc.ResourceVersion = "1"
	in.Secrets.Acceptor = acc
	in.Certificates = map[string]*cmv1.Certificate{}
	for _, crt := range p.Certificates {
		in.Certificates[crt.Name] = crt
	}
	in.Ordinals = 1
	p = PlanCertManager(in)
	if len(p.DeleteCertificates) != 1 || p.DeleteCertificates[0].Name != "kc-1-tls" {
		t.Fatalf("deletes %v", p.DeleteCertificates)
	}
	if _, ok := p.Writes[0].Data["kc-1.crt"]; ok {
		t.Fatal("the removed pod's pair is still copied")
	}
}

// issueFor is cert-manager's CA issuer for crt: the Secret it writes,
// labelled by the secretTemplate.
func issueFor(t *testing.T, ca *pki.CA, crt *cmv1.Certificate, now time.Time) *corev1.Secret {
	leaf := pki.Leaf{CommonName: crt.Spec.CommonName, DNSNames: crt.Spec.DNSNames, Validity: crt.Spec.Duration.Duration,
		Server: slices.Contains(crt.Spec.Usages, cmv1.UsageServerAuth), Client: slices.Contains(crt.Spec.Usages, cmv1.UsageClientAuth)}
	for _, ip := range crt.Spec.IPAddresses {
		leaf.IPs = append(leaf.IPs, net.ParseIP(ip))
	}
	if crt.Spec.Subject != nil {
		leaf.Organization = crt.Spec.Subject.Organizations
	}
	certPEM, keyPEM, err := ca.Issue(leaf, now)
	if err != nil {
		t.Error(err)
		return nil
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: crt.Spec.SecretName, Namespace: crt.Namespace, Labels: crt.Spec.SecretTemplate.Labels,
			Annotations: map[string]string{cmv1.CertificateNameKey: crt.Name, cmv1.IPSANAnnotationKey: strings.Join(crt.Spec.IPAddresses, ",")}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM, KeyCACert: ca.CertPEM},
	}
}
