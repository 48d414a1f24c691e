package acceptor

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"
	"path"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/kshaka-io/kshaka/internal/pki"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// methodRoles is the authorization policy (docs/design.md §9.1): the least
// role each RPC of the services Register serves needs. Admin may call
// everything; Client the data path, GetConfig and health. An RPC missing
// here needs RoleAdmin (TestEveryRPCHasAPolicy fails until it is listed).
var methodRoles = map[string]pki.Role{
	kshakav1.Acceptor_Prepare_FullMethodName: pki.RoleClient,
	kshakav1.Acceptor_Accept_FullMethodName:  pki.RoleClient,
	kshakav1.Acceptor_Read_FullMethodName:    pki.RoleClient,
	kshakav1.Admin_GetConfig_FullMethodName:  pki.RoleClient,
	kshakav1.Admin_SetConfig_FullMethodName:  pki.RoleAdmin,
	kshakav1.Admin_Status_FullMethodName:     pki.RoleAdmin,
	kshakav1.Admin_ListKeys_FullMethodName:   pki.RoleAdmin,
	kshakav1.Admin_Collect_FullMethodName:    pki.RoleAdmin,
	healthgrpc.Health_Check_FullMethodName:   pki.RoleClient,
	healthgrpc.Health_Watch_FullMethodName:   pki.RoleClient,
	healthgrpc.Health_List_FullMethodName:    pki.RoleClient,
}

// requiredRole returns the least role that may call fullMethod.
func requiredRole(fullMethod string) pki.Role {
	if r, ok := methodRoles[fullMethod]; ok {
		return r
	}
	return pki.RoleAdmin
}

// orgOf names the Subject Organization that carries r.
func orgOf(r pki.Role) string {
	if r == pki.RoleAdmin {
		return pki.OrgAdmin
	}
	return pki.OrgClient
}

// authorize decides whether the caller of fullMethod may call it; it is the
// only place that does. With Options.MutualTLS the connection must carry a
// verified client certificate (UNAUTHENTICATED otherwise) whose role allows
// the method (PERMISSION_DENIED otherwise). A method that needs RoleAdmin
// also needs Options.AdminToken, when one is set, as the bearer token
// (UNAUTHENTICATED otherwise).
func (a *Acceptor) authorize(ctx context.Context, fullMethod string) error {
	need := requiredRole(fullMethod)
	if a.opts.MutualTLS {
		cert, err := verifiedClientCert(ctx)
		if err != nil {
			return status.Errorf(codes.Unauthenticated, "client certificate required: %v; present one signed by the cluster CA "+
				"with O=%s (or O=%s)", err, pki.OrgClient, pki.OrgAdmin)
		}
		if role := pki.RoleOf(cert); role < need {
			return status.Errorf(codes.PermissionDenied, "the client certificate %q (O=%s) has role %s; %s needs role %s (O=%s)",
				cert.Subject.CommonName, strings.Join(cert.Subject.Organization, ","), role, fullMethod, need, orgOf(need))
		}
	}
	if need == pki.RoleAdmin && a.opts.AdminToken != "" {
		return a.checkToken(ctx, fullMethod)
	}
	return nil
}

// verifiedClientCert returns the client certificate the TLS handshake of
// ctx's connection verified.
func verifiedClientCert(ctx context.Context) (*x509.Certificate, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, errors.New("the call has no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, errors.New("the connection is not TLS")
	}
	if len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		if len(ti.State.PeerCertificates) > 0 {
			return nil, errors.New("the certificate presented was not verified")
		}
		return nil, errors.New("none was presented")
	}
	return ti.State.VerifiedChains[0][0], nil
}

// checkToken checks the bearer admin token.
func (a *Acceptor) checkToken(ctx context.Context, fullMethod string) error {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return status.Errorf(codes.Unauthenticated, "admin token required for %s: send metadata `authorization: Bearer <token>`", fullMethod)
	}
	want := "Bearer " + a.opts.AdminToken
	for _, v := range vals {
		if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(v)), []byte(want)) == 1 {
			return nil
		}
	}
	return status.Errorf(codes.Unauthenticated, "invalid admin token for %s", fullMethod)
}

// authorizedKey marks the context of a call that authorize let through.
type authorizedKey struct{}

// authorized fails a call that did not pass the interceptors of
// ServerOptions: a server created without them serves nothing rather than
// everything.
func authorized(ctx context.Context) error {
	if ctx.Value(authorizedKey{}) == nil {
		return status.Error(codes.Internal, "the gRPC server was not created with the acceptor's ServerOptions, "+
			"which authorize every call; refusing to serve it")
	}
	return nil
}

// refuse authorizes a call and counts a refusal.
func (a *Acceptor) refuse(ctx context.Context, fullMethod string) error {
	err := a.authorize(ctx, fullMethod)
	if err != nil {
		a.metrics.refusals.WithLabelValues(path.Base(fullMethod), status.Code(err).String()).Inc()
	}
	return err
}

// tapAuth refuses an unauthorized call before its stream is created, so that
// its request is never read.
func (a *Acceptor) tapAuth(ctx context.Context, info *tap.Info) (context.Context, error) {
	if err := a.refuse(ctx, info.FullMethodName); err != nil {
		return ctx, err
	}
	return ctx, nil
}

func (a *Acceptor) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := a.refuse(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(context.WithValue(ctx, authorizedKey{}, true), req)
}

func (a *Acceptor) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx := ss.Context()
	if err := a.refuse(ctx, info.FullMethod); err != nil {
		return err
	}
	return handler(srv, authorizedStream{ServerStream: ss, ctx: context.WithValue(ctx, authorizedKey{}, true)})
}

type authorizedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s authorizedStream) Context() context.Context { return s.ctx }
