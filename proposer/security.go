package proposer

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/tlsreload"
)

// ErrAccess is wrapped by every *AccessError: an acceptor refused this
// client, or the TLS handshake with it failed. Retrying does not help;
// the TLS configuration, the certificate or its role must change.
var ErrAccess = errors.New("kshaka: access to the acceptor failed")

// AccessError says why an acceptor refused this client, or why the TLS
// handshake with it failed, in words: a wrong CA, an expired or misnamed
// acceptor certificate, a missing client certificate (UNAUTHENTICATED), a
// role that does not allow the call (PERMISSION_DENIED).
type AccessError struct {
	// Addr is the acceptor's address.
	Addr string
	// Reason says what is wrong, e.g. "refused the client certificate".
	Reason string
	// Err is the gRPC status or TLS error.
	Err error
}

func (e *AccessError) Error() string {
	return fmt.Sprintf("acceptor %s %s: %v", e.Addr, e.Reason, e.Err)
}

// Unwrap returns the gRPC status or TLS error.
func (e *AccessError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrAccess) true.
func (e *AccessError) Is(target error) bool { return target == ErrAccess }

// security is how a client secures its connections.
type security struct {
	creds credentials.TransportCredentials // nil: plaintext
	// files reloads Config.TLSDir; nil without one.
	files *tlsreload.Client
	// handshakes remembers the last failed handshake per acceptor, so that
	// an UNAVAILABLE call can say what failed.
	handshakes *handshakes
}

// newSecurity builds the transport security Config asks for.
func newSecurity(cfg Config) (*security, error) {
	s := &security{handshakes: &handshakes{}}
	var creds credentials.TransportCredentials
	switch {
	case cfg.TLSDir != "":
		files, err := tlsreload.DirFiles(cfg.TLSDir)
		if err != nil {
			return nil, fmt.Errorf("while reading Config.TLSDir: %w", err)
		}
		if s.files, err = tlsreload.NewClient(files, tlsreload.Options{OnReload: cfg.Events.TLSReload}); err != nil {
			return nil, fmt.Errorf("while loading Config.TLSDir: %w", err)
		}
		creds = s.files.Credentials(cfg.TLSServerName)
	case cfg.TLS != nil:
		tc := cfg.TLS.Clone()
		if cfg.TLSServerName != "" {
			tc.ServerName = cfg.TLSServerName
		}
		creds = credentials.NewTLS(tc)
	default:
		return s, nil
	}
	s.creds = recordingCreds{TransportCredentials: creds, h: s.handshakes}
	return s, nil
}

// transport returns the transport credentials of the connections.
func (s *security) transport() credentials.TransportCredentials {
	if s.creds == nil {
		return insecure.NewCredentials()
	}
	return s.creds
}

func (s *security) close() {
	if s.files != nil {
		s.files.Close()
	}
}

// describe turns an RPC error from the acceptor at addr into an
// *AccessError when it is a refusal of this client or a failed TLS
// handshake; other errors are returned as they are.
func (s *security) describe(addr string, err error) error {
	if err == nil {
		return nil
	}
	var ae *AccessError
	if errors.As(err, &ae) {
		return err
	}
	switch status.Code(err) {
	case codes.Unauthenticated:
		return &AccessError{Addr: addr, Reason: "refused the client certificate", Err: err}
	case codes.PermissionDenied:
		return &AccessError{Addr: addr, Reason: "refused the call: the client certificate's role does not allow it", Err: err}
	case codes.Unavailable, codes.DeadlineExceeded:
		if herr := s.handshakes.last(addr); herr != nil {
			return &AccessError{Addr: addr, Reason: "failed the TLS handshake: " + handshakeReason(herr), Err: herr}
		}
		if s.creds == nil && strings.Contains(err.Error(), "error reading server preface") {
			return &AccessError{Addr: addr, Reason: "closed the plaintext connection (does it serve TLS? set Config.TLS or Config.TLSDir)", Err: err}
		}
	}
	return err
}

// handshakeReason says in words why a client handshake failed.
func handshakeReason(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		alert    tls.AlertError
		record   tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &unknown):
		issuer := "an unknown CA"
		if unknown.Cert != nil {
			issuer = fmt.Sprintf("%q", unknown.Cert.Issuer.CommonName)
		}
		return fmt.Sprintf("the acceptor's certificate is signed by %s, which is not in the CA bundle (wrong CA?)", issuer)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return "the acceptor's certificate has expired or is not valid yet"
	case errors.As(err, &invalid):
		return "the acceptor's certificate is not valid"
	case errors.As(err, &hostname):
		return fmt.Sprintf("the acceptor's certificate is not valid for %q (the dialled host, or Config.TLSServerName: set it to a name the certificate holds)", hostname.Host)
	case errors.As(err, &alert):
		return "the acceptor refused the client certificate during the handshake"
	case errors.As(err, &record):
		return "the acceptor does not speak TLS (does it serve plaintext?)"
	}
	return "the handshake did not complete"
}

// handshakes holds the last failed handshake error per authority.
type handshakes struct {
	mu   sync.Mutex
	errs map[string]error
}

func (h *handshakes) set(authority string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		delete(h.errs, authority)
		return
	}
	if h.errs == nil {
		h.errs = map[string]error{}
	}
	h.errs[authority] = err
}

func (h *handshakes) last(addr string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.errs[addr]
}

// recordingCreds remembers the outcome of every client handshake by the
// authority (the dialled address, unless a server name overrides it) and by
// the remote address.
type recordingCreds struct {
	credentials.TransportCredentials
	h *handshakes
}

func (r recordingCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := r.TransportCredentials.ClientHandshake(ctx, authority, raw)
	if ctx.Err() == nil {
		r.h.set(authority, err)
		if ra := raw.RemoteAddr(); ra != nil && ra.String() != authority {
			r.h.set(ra.String(), err)
		}
	}
	return conn, info, err
}

func (r recordingCreds) Clone() credentials.TransportCredentials {
	return recordingCreds{TransportCredentials: r.TransportCredentials.Clone(), h: r.h}
}
