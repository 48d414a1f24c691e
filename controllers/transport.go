package controllers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ClientTLS is the operator's TLS material for one cluster, read from the
// Secret <cluster>-operator-tls (its admin certificate) and the trust
// bundle of the acceptors (docs/design.md §9.2) on every reconcile.
type ClientTLS struct {
	// Certificate is presented to acceptors: O=kshaka:admin.
	Certificate tls.Certificate
	// Roots verify the acceptors' server certificates.
	Roots *x509.CertPool
}

// Transport says how the operator reaches one cluster's acceptors.
type Transport struct {
	// Cluster identifies the cluster ("namespace/name"): connections and
	// credentials are kept per cluster.
	Cluster string
	// TLS is the material of the cluster's mutual TLS; nil while there is
	// none (mode Disabled, or before the Secrets exist).
	TLS *ClientTLS
	// Plaintext are the addresses of acceptors that serve without TLS (their
	// pod was started without TLS: mode Disabled, or a pod the rolling
	// update to TLS has not reached). Every other address is dialled with
	// TLS, and the acceptor's certificate must name the address's host.
	Plaintext map[string]bool
	// NoTLS says why TLS is nil, for the error of a TLS dial without it.
	NoTLS string
}

// Dialer gives the Acceptors of one cluster, reached with its Transport.
// GRPCAcceptors is one; the reconciler uses it when Reconciler.Acceptors
// implements it.
type Dialer interface {
	Dial(t Transport) Acceptors
}

// transportState is one cluster's current Transport, which its
// connections' credentials read at every handshake: a renewed certificate
// or bundle is used from the next connection on, without a restart.
type transportState struct {
	// allPlaintext: every address is dialled without TLS (GRPCAcceptors
	// used directly, not through Dial).
	allPlaintext bool
	mu           struct {
		sync.Mutex
		t Transport
	}
}

func (s *transportState) set(t Transport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.t = t
}

func (s *transportState) get() Transport {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.t
}

// clusterCredentials are the transport credentials of one cluster's
// connections: plaintext to the addresses its Transport lists as such,
// mutual TLS to every other, with ServerName the address's host so that the
// acceptor's certificate is checked against the address dialled.
type clusterCredentials struct {
	state *transportState
}

var _ credentials.TransportCredentials = clusterCredentials{}

// ClientHandshake implements credentials.TransportCredentials.
func (c clusterCredentials) ClientHandshake(ctx context.Context, authority string, conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	t := c.state.get()
	if c.state.allPlaintext || t.Plaintext[authority] {
		return insecure.NewCredentials().ClientHandshake(ctx, authority, conn)
	}
	if t.TLS == nil {
		why := t.NoTLS
		if why == "" {
			why = "no TLS material"
		}
		return nil, nil, fmt.Errorf("cannot dial %s with TLS: %s", authority, why)
	}
	host, _, err := net.SplitHostPort(authority)
	if err != nil {
		host = authority
	}
	m := t.TLS
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    m.Roots,
		ServerName: host,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &m.Certificate, nil
		},
	}
	return credentials.NewTLS(cfg).ClientHandshake(ctx, authority, conn)
}

// ServerHandshake implements credentials.TransportCredentials; these
// credentials are for clients only.
func (clusterCredentials) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("the operator's credentials are for clients only")
}

// Info implements credentials.TransportCredentials.
func (clusterCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

// Clone implements credentials.TransportCredentials.
func (c clusterCredentials) Clone() credentials.TransportCredentials { return c }

// OverrideServerName implements credentials.TransportCredentials; the
// server name is always the dialled address's host.
func (clusterCredentials) OverrideServerName(string) error { return nil }

// ParseClientTLS builds a ClientTLS from PEM: the operator's certificate
// and key, and the bundle (one or more CA certificates) that verifies the
// acceptors.
func ParseClientTLS(certPEM, keyPEM, bundlePEM []byte) (*ClientTLS, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("while reading the operator's certificate: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(bundlePEM) {
		return nil, errors.New("the trust bundle holds no PEM certificate")
	}
	return &ClientTLS{Certificate: cert, Roots: roots}, nil
}
