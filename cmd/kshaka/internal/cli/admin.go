package cli

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// adminConn is a connection to one acceptor's Admin service.
type adminConn struct {
	addr string
	cc   *grpc.ClientConn
	kshakav1.AdminClient
}

// dialAdmin connects to the Admin service at addr. The connection is lazy:
// errors show up on the first call.
func dialAdmin(addr string, tlsCfg *tls.Config, token string) (*adminConn, error) {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg.Clone())
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds)}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: token}))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("while connecting to %s: %w", addr, err)
	}
	return &adminConn{addr: addr, cc: cc, AdminClient: kshakav1.NewAdminClient(cc)}, nil
}

func (c *adminConn) Close() error { return c.cc.Close() }

// bearer sends `authorization: Bearer <token>` with every call.
type bearer struct{ token string }

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

// RequireTransportSecurity is false so the token also works on loopback
// without TLS (kshaka local).
func (b bearer) RequireTransportSecurity() bool { return false }
