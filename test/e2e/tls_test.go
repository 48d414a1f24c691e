//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// clientTLSDir is where the tests' clients find the cluster's client
// certificate: a copy of the Secret <cluster>-client-tls that mountSecret
// keeps up to date, as a kubelet keeps a mounted Secret.
var clientTLSDir string

// clientDialOptions make the tests' clients resolve cluster names through
// localkube's DNS (newEnv).
var clientDialOptions []grpc.DialOption

// clientConfig is the proposer configuration of the tests' clients: the
// cluster's client certificate, as an application mounts it.
func clientConfig(eps []string) proposer.Config {
	return proposer.Config{Endpoints: eps, TLSDir: clientTLSDir, DialOptions: clientDialOptions}
}

// mountSecret copies the Secret ns/name into a directory and keeps the copy
// up to date until the test ends, each change swapped in whole (files are
// links through ..data, the kubelet's layout). It returns the directory once
// the Secret has been copied.
func (e *env) mountSecret(ns, name string) string {
	t := e.t
	dir := filepath.Join(t.TempDir(), name)
	must(t, os.MkdirAll(dir, 0o700))
	copyOnce := func(ctx context.Context) (bool, error) {
		var s corev1.Secret
		if err := e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		if len(s.Data["tls.crt"]) == 0 {
			return false, nil
		}
		return true, swapFiles(dir, s.Data)
	}
	e.eventually(t, settle, "Secret "+ns+"/"+name+" exists", copyOnce)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if _, err := copyOnce(ctx); err != nil && ctx.Err() == nil {
				t.Logf("while refreshing the copy of Secret %s/%s: %v", ns, name, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return dir
}

// swapFiles makes dir hold data, swapping a new version in with one rename
// when it differs from the current one.
func swapFiles(dir string, data map[string][]byte) error {
	same := true
	for k, v := range data {
		if b, err := os.ReadFile(filepath.Join(dir, k)); err != nil || string(b) != string(v) {
			same = false
		}
	}
	if same {
		return nil
	}
	version := fmt.Sprintf("..%d", time.Now().UnixNano())
	if err := os.MkdirAll(filepath.Join(dir, version), 0o700); err != nil {
		return err
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(dir, version, k), v, 0o600); err != nil {
			return err
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(version, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for k := range data {
		link := filepath.Join(dir, k)
		if _, err := os.Readlink(link); err != nil {
			_ = os.Remove(link)
			if err := os.Symlink(filepath.Join("..data", k), link); err != nil {
				return err
			}
		}
	}
	if old != "" {
		_ = os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// secretTLS is a TLS client configuration from a kubernetes.io/tls Secret
// (ca.crt, and tls.crt/tls.key unless withoutCert).
func (e *env) secretTLS(t *testing.T, ns, name string, withoutCert bool) *tls.Config {
	t.Helper()
	var s corev1.Secret
	must(t, e.cl.Get(ctxT(t, 30*time.Second), client.ObjectKey{Namespace: ns, Name: name}, &s))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.Data["ca.crt"]) {
		t.Fatalf("Secret %s/%s has no CA in ca.crt", ns, name)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if !withoutCert {
		pair, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
		must(t, err)
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg
}

// conn dials one acceptor with cfg.
func conn(t *testing.T, addr string, cfg *tls.Config) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}, clientDialOptions...)...)
	must(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, want)
	} else {
		t.Logf("%s: refused as expected: %v", what, err)
	}
}

// testTLSRoles: TLS is on by default; a client without a certificate is
// refused, the client certificate serves data but cannot reconfigure, the
// operator's certificate can; all while a checked workload runs.
func testTLSRoles(t *testing.T, e *env) {
	kc := e.get(t, ns, name)
	if kc.Status.TLS == nil || kc.Status.TLS.Mode != kshakav1alpha1.TLSMode("Operator") {
		t.Fatalf("status.tls = %+v, want mode Operator by default", kc.Status.TLS)
	}
	if got, want := kc.Status.TLS.ClientSecretName, name+"-client-tls"; got != want {
		t.Errorf("status.tls.clientSecretName = %q, want %q", got, want)
	}
	if !meta.IsStatusConditionTrue(kc.Status.Conditions, "TLSReady") {
		t.Errorf("condition TLSReady is not True: %+v", meta.FindStatusCondition(kc.Status.Conditions, "TLSReady"))
	}
	eps := endpoints(kc)
	w := startWorkload(t, eps, 2, "tls")
	defer w.stop(eps, 5)
	addr := eps[0]

	// No client certificate: the proposer library says what is wrong, and
	// the acceptor answers UNAUTHENTICATED.
	noCert := e.secretTLS(t, ns, name+"-client-tls", true)
	ctx := ctxT(t, 30*time.Second)
	if c, err := proposer.New(ctx, proposer.Config{Endpoints: eps, TLS: noCert, DialOptions: clientDialOptions}); err == nil {
		_ = c.Close()
		t.Error("a client without a certificate connected")
	} else if !errors.Is(err, proposer.ErrAccess) {
		t.Errorf("a client without a certificate: %v, want proposer.ErrAccess", err)
	} else {
		t.Logf("a client without a certificate: %v", err)
	}
	_, err := kshakav1.NewAcceptorClient(conn(t, addr, noCert)).Read(ctx, &kshakav1.ReadRequest{Keys: [][]byte{[]byte("tls/k0")}})
	wantCode(t, "Read without a client certificate", err, codes.Unauthenticated)

	// The client certificate: GetConfig yes, SetConfig and ListKeys no.
	clientAdmin := kshakav1.NewAdminClient(conn(t, addr, e.secretTLS(t, ns, name+"-client-tls", false)))
	got, err := clientAdmin.GetConfig(ctx, &kshakav1.GetConfigRequest{})
	if err != nil {
		t.Fatalf("GetConfig with the client certificate: %v", err)
	}
	cfg := got.GetConfig()
	bumped := proto.Clone(cfg).(*kshakav1.Config)
	bumped.Epoch = cfg.GetEpoch() + 100
	_, err = clientAdmin.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: bumped})
	wantCode(t, "SetConfig with the client certificate", err, codes.PermissionDenied)
	lk, err := clientAdmin.ListKeys(ctx, &kshakav1.ListKeysRequest{})
	if err == nil {
		_, err = lk.Recv()
	}
	wantCode(t, "ListKeys with the client certificate", err, codes.PermissionDenied)
	if after, err := clientAdmin.GetConfig(ctx, &kshakav1.GetConfigRequest{}); err != nil || after.GetConfig().GetEpoch() != cfg.GetEpoch() {
		t.Errorf("after the refused SetConfig: epoch %d (%v), want %d", after.GetConfig().GetEpoch(), err, cfg.GetEpoch())
	}

	// The operator's certificate is an admin.
	opAdmin := kshakav1.NewAdminClient(conn(t, addr, e.secretTLS(t, ns, name+"-operator-tls", false)))
	if _, err := opAdmin.Status(ctx, &kshakav1.StatusRequest{}); err != nil {
		t.Errorf("Status with the operator's certificate: %v", err)
	}
	w.progress(50) // the clients keep being served across the refusals
}

// testNetworkPolicy: the operator keeps a NetworkPolicy for the cluster.
// localkube does not enforce policies, so this checks the object.
func testNetworkPolicy(t *testing.T, e *env) {
	var np networkingv1.NetworkPolicy
	e.eventually(t, time.Minute, "NetworkPolicy "+ns+"/"+name+" exists", func(ctx context.Context) (bool, error) {
		err := e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &np)
		return err == nil, client.IgnoreNotFound(err)
	})
	if got := np.Spec.PodSelector.MatchLabels["app.kubernetes.io/instance"]; got != name {
		t.Errorf("podSelector %v does not select the cluster's pods", np.Spec.PodSelector.MatchLabels)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		t.Errorf("policyTypes %v, want [Ingress]", np.Spec.PolicyTypes)
	}
	rule := func(port int) *networkingv1.NetworkPolicyIngressRule {
		for i, r := range np.Spec.Ingress {
			for _, p := range r.Ports {
				if p.Port != nil && p.Port.IntValue() == port {
					return &np.Spec.Ingress[i]
				}
			}
		}
		return nil
	}
	nsOf := func(r *networkingv1.NetworkPolicyIngressRule) []string {
		var out []string
		for _, f := range r.From {
			if f.NamespaceSelector != nil {
				out = append(out, f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"])
			} else {
				out = append(out, "(own)")
			}
		}
		return out
	}
	data := rule(7400)
	switch {
	case data == nil:
		t.Error("no ingress rule for the data port 7400")
	case len(data.From) == 0:
		t.Error("the data port 7400 is open to every pod")
	default:
		from := nsOf(data)
		if !slices.Contains(from, operatorNamespace) {
			t.Errorf("port 7400 admits %v, not the operator's namespace %s", from, operatorNamespace)
		}
		if !slices.Contains(from, ns) && !slices.Contains(from, "(own)") {
			t.Errorf("port 7400 admits %v, not the cluster's own namespace", from)
		}
		t.Logf("port 7400 admits %v", from)
	}
	if h := rule(7401); h == nil || len(h.From) != 0 {
		t.Errorf("health port 7401: %+v, want open to the kubelet (no from)", h)
	}
	if m := rule(9400); m == nil || len(m.From) == 0 {
		t.Errorf("metrics port 9400: %+v, want limited to a selector", m)
	}
}

// testRotateCA: a CA rotation under a checked workload. Every certificate is
// reissued by a new CA while the clients keep going: the history stays
// linearizable and no operation is refused for a TLS reason.
func testRotateCA(t *testing.T, e *env) {
	before := e.get(t, ns, name)
	var caBefore corev1.Secret
	must(t, e.cl.Get(ctxT(t, 30*time.Second), client.ObjectKey{Namespace: ns, Name: name + "-ca"}, &caBefore))
	eps := endpoints(before)
	w := startWorkload(t, eps, 3, "rotate")
	w.progress(50)
	e.update(t, ns, name, func(kc *kshakav1alpha1.KshakaCluster) {
		if kc.Annotations == nil {
			kc.Annotations = map[string]string{}
		}
		kc.Annotations["kshaka.io/rotate-ca"] = time.Now().UTC().Format(time.RFC3339)
	})
	seen := map[string]bool{}
	e.eventually(t, settle, "the CA rotation finishes", func(ctx context.Context) (bool, error) {
		var kc kshakav1alpha1.KshakaCluster
		var ca corev1.Secret
		if err := e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &kc); err != nil {
			return false, err
		}
		if err := e.cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name + "-ca"}, &ca); err != nil {
			return false, err
		}
		if kc.Status.TLS != nil && kc.Status.TLS.CARotation != "" && !seen[kc.Status.TLS.CARotation] {
			seen[kc.Status.TLS.CARotation] = true
			t.Logf("CA rotation step %s", kc.Status.TLS.CARotation)
		}
		return string(ca.Data["ca.crt"]) != string(caBefore.Data["ca.crt"]) && ca.Data["previous-ca.crt"] == nil &&
			kc.Status.TLS != nil && kc.Status.TLS.CARotation == "", nil
	})
	// The clients' copy of the client Secret and every acceptor now hold
	// the new CA only; the workload must go on with them.
	w.progress(100)
	w.stop(eps, 20)
	w.mu.Lock()
	access := w.mu.access
	w.mu.Unlock()
	if access != 0 {
		t.Errorf("%d operations were refused for a TLS reason during the rotation", access)
	}
	// A client that trusts only the old CA is now refused.
	old := x509.NewCertPool()
	old.AppendCertsFromPEM(caBefore.Data["ca.crt"])
	oldCfg := e.secretTLS(t, ns, name+"-client-tls", false)
	oldCfg.RootCAs = old
	_, err := kshakav1.NewAdminClient(conn(t, eps[0], oldCfg)).GetConfig(ctxT(t, 10*time.Second), &kshakav1.GetConfigRequest{})
	if err == nil {
		t.Error("a client trusting only the old CA still verified an acceptor")
	}
}
