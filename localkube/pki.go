package localkube

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// pki is the cluster's certificate authority and the files made from it.
// Everything lives in Dir/pki and is reused across restarts, so kubeconfigs
// handed out stay valid.
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte
}

// certificate file pairs under Dir/pki.
const (
	pkiCA            = "ca"
	pkiAPIServer     = "apiserver"
	pkiAdmin         = "admin"
	pkiKubeletClient = "apiserver-kubelet-client"
	pkiKubelet       = "kubelet"
	pkiFrontProxy    = "front-proxy-client"
	pkiServiceAcct   = "sa" // sa.key and sa.pub, a key pair only
)

func (p *pki) path(name, ext string) string { return filepath.Join(p.dir, name+"."+ext) }

// loadOrCreatePKI loads the CA from dir, or creates it with every serving
// and client certificate the control plane needs.
func loadOrCreatePKI(dir string, nodeName string) (*pki, error) {
	p := &pki{dir: dir}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := p.loadCA(); errors.Is(err, os.ErrNotExist) {
		if err := p.createCA(); err != nil {
			return nil, fmt.Errorf("while creating the CA: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("while loading the CA: %w", err)
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1")}
	certs := []struct {
		name string
		tmpl *x509.Certificate
	}{
		{pkiAPIServer, serverTemplate("kube-apiserver", loopback, "localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local")},
		{pkiAdmin, clientTemplate("kubernetes-admin", "system:masters")},
		{pkiKubeletClient, clientTemplate("kube-apiserver-kubelet-client", "system:masters")},
		{pkiKubelet, serverTemplate(nodeName, loopback, "localhost", nodeName)},
		{pkiFrontProxy, clientTemplate("front-proxy-client")},
	}
	for _, c := range certs {
		if _, err := os.Stat(p.path(c.name, "crt")); err == nil {
			continue
		}
		certPEM, keyPEM, err := p.issue(c.tmpl)
		if err != nil {
			return nil, fmt.Errorf("while issuing %s: %w", c.name, err)
		}
		if err := writePair(p.path(c.name, "crt"), certPEM, p.path(c.name, "key"), keyPEM); err != nil {
			return nil, err
		}
	}
	if _, err := os.Stat(p.path(pkiServiceAcct, "key")); err != nil {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		keyPEM, err := encodeKey(key)
		if err != nil {
			return nil, err
		}
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		if err != nil {
			return nil, err
		}
		pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
		if err := writePair(p.path(pkiServiceAcct, "pub"), pubPEM, p.path(pkiServiceAcct, "key"), keyPEM); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *pki) loadCA() error {
	certPEM, err := os.ReadFile(p.path(pkiCA, "crt"))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(p.path(pkiCA, "key"))
	if err != nil {
		return err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return errors.New("ca.crt or ca.key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return err
	}
	p.caCert, p.caKey, p.caPEM = cert, key, certPEM
	return nil
}

func (p *pki) createCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "localkube-ca"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := writePair(p.path(pkiCA, "crt"), certPEM, p.path(pkiCA, "key"), keyPEM); err != nil {
		return err
	}
	return p.loadCA()
}

// issue signs tmpl with the CA for a fresh key.
func (p *pki) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// writeKubeconfig writes a kubeconfig for server that authenticates with a
// client certificate for user in groups, issued now, with the data inline.
func (p *pki) writeKubeconfig(path, server, user string, groups ...string) error {
	certPEM, keyPEM, err := p.issue(clientTemplate(user, groups...))
	if err != nil {
		return err
	}
	return p.writeKubeconfigWith(path, server, certPEM, keyPEM)
}

// writeKubeconfigFor writes a kubeconfig that uses the named certificate
// pair from Dir/pki.
func (p *pki) writeKubeconfigFor(path, server, name string) error {
	certPEM, err := os.ReadFile(p.path(name, "crt"))
	if err != nil {
		return err
	}
	keyPEM, err := os.ReadFile(p.path(name, "key"))
	if err != nil {
		return err
	}
	return p.writeKubeconfigWith(path, server, certPEM, keyPEM)
}

func (p *pki) writeKubeconfigWith(path, server string, certPEM, keyPEM []byte) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["localkube"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos["localkube"] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts["localkube"] = &clientcmdapi.Context{Cluster: "localkube", AuthInfo: "localkube", Namespace: "default"}
	cfg.CurrentContext = "localkube"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := clientcmd.WriteToFile(*cfg, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func serverTemplate(cn string, ips []net.IP, dns ...string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
}

func clientTemplate(user string, groups ...string) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: user, Organization: groups},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func writePair(certPath string, certPEM []byte, keyPath string, keyPEM []byte) error {
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(certPath, certPEM, 0o644)
}
