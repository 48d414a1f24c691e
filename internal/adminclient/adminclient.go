package adminclient

import (
	"context"
	"fmt"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// Conn is a connection to one acceptor's Admin service; its AdminClient
// methods are the RPCs.
type Conn struct {
	kshakav1.AdminClient
	addr string
	cc   *grpc.ClientConn
}

// Dial connects to the Admin service at addr (host:port, or a gRPC target
// with a scheme). creds secures the connection; nil means plaintext. A
// non-empty token is sent with every call as a bearer token; in plaintext
// only to a loopback address. opts are added after Dial's own options (a
// context dialer, interceptors).
func Dial(addr string, creds credentials.TransportCredentials, token string, opts ...grpc.DialOption) (*Conn, error) {
	plaintext := creds == nil
	if plaintext {
		creds = insecure.NewCredentials()
	}
	all := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		if plaintext && !IsLoopback(addr) {
			return nil, fmt.Errorf("refusing to send the admin token in plaintext to %s: use TLS, or a loopback address", addr)
		}
		all = append(all, grpc.WithPerRPCCredentials(Bearer(token, !plaintext)))
	}
	target := addr
	if !strings.Contains(addr, "://") {
		target = "passthrough:///" + addr
	}
	cc, err := grpc.NewClient(target, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", addr, err)
	}
	return &Conn{AdminClient: kshakav1.NewAdminClient(cc), addr: addr, cc: cc}, nil
}

// Addr returns the address Dial was given.
func (c *Conn) Addr() string { return c.addr }

// ClientConn returns the underlying connection.
func (c *Conn) ClientConn() *grpc.ClientConn { return c.cc }

// Close closes the connection.
func (c *Conn) Close() error { return c.cc.Close() }

// Bearer returns per-call credentials that send `authorization: Bearer
// <token>`. requireTLS false lets them go over plaintext; Dial allows that
// only to loopback addresses.
func Bearer(token string, requireTLS bool) credentials.PerRPCCredentials {
	return bearer{token: token, requireTLS: requireTLS}
}

type bearer struct {
	token      string
	requireTLS bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.requireTLS }

// IsLoopback reports whether addr (host:port) names this machine: localhost
// or a loopback IP.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
