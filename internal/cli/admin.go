package cli

import (
	"context"
	"crypto/tls"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kshaka-io/kshaka/membership"
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

// configFromProto converts a wire configuration; nil is the empty
// configuration (epoch 0).
func configFromProto(pc *kshakav1.Config) membership.Config {
	if pc == nil {
		return membership.Config{}
	}
	c := membership.Config{
		Epoch:         pc.GetEpoch(),
		PrepareQuorum: int(pc.GetPrepareQuorum()),
		AcceptQuorum:  int(pc.GetAcceptQuorum()),
	}
	for _, m := range pc.GetMembers() {
		c.Members = append(c.Members, membership.Member{
			ID: m.GetId(), Addr: m.GetAddr(), Incarnation: m.GetIncarnation(),
			Prepare: m.GetPrepare(), Accept: m.GetAccept(),
		})
	}
	return c
}

// configToProto converts a configuration to its wire form.
func configToProto(c membership.Config) *kshakav1.Config {
	pc := &kshakav1.Config{
		Epoch:         c.Epoch,
		PrepareQuorum: uint32(c.PrepareQuorum),
		AcceptQuorum:  uint32(c.AcceptQuorum),
	}
	for _, m := range c.Members {
		pc.Members = append(pc.Members, &kshakav1.Member{
			Id: m.ID, Addr: m.Addr, Incarnation: m.Incarnation,
			Prepare: m.Prepare, Accept: m.Accept,
		})
	}
	return pc
}
