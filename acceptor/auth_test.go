package acceptor

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/kshaka-io/kshaka/internal/pki"
	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
	"github.com/kshaka-io/kshaka/register"
)

// The policy lists every RPC of every service Register serves, and nothing
// else; the RPCs that need the admin role are exactly docs/design.md §9.1's.
func TestEveryRPCHasAPolicy(t *testing.T) {
	admin := map[string]bool{
		kshakav1.Admin_SetConfig_FullMethodName: true,
		kshakav1.Admin_Status_FullMethodName:    true,
		kshakav1.Admin_ListKeys_FullMethodName:  true,
		kshakav1.Admin_Collect_FullMethodName:   true,
	}
	served := map[string]bool{}
	for _, r := range allRPCs(t) {
		served[r.full] = true
		role, ok := methodRoles[r.full]
		if !ok {
			t.Errorf("%s has no entry in methodRoles: say which role may call it", r.full)
			continue
		}
		want := pki.RoleClient
		if admin[r.full] {
			want = pki.RoleAdmin
		}
		if role != want {
			t.Errorf("%s needs role %v, docs/design.md §9.1 says %v", r.full, role, want)
		}
	}
	for m := range methodRoles {
		if !served[m] {
			t.Errorf("methodRoles lists %s, which no registered service serves", m)
		}
	}
	if requiredRole("/kshaka.v1.Admin/Unknown") != pki.RoleAdmin {
		t.Error("a method without a policy does not need the admin role")
	}
}

// requests are a valid request for every RPC; the data-path ones and
// SetConfig would write if they were served.
func requests(s *tlsServer) map[string]proto.Message {
	next := s.acc.Config()
	next.Epoch++
	return map[string]proto.Message{
		kshakav1.Acceptor_Prepare_FullMethodName: &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep("k", b(50, 1))}},
		kshakav1.Acceptor_Accept_FullMethodName:  &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(60, 1), val(1, "v"), nil)}},
		kshakav1.Acceptor_Read_FullMethodName:    &kshakav1.ReadRequest{Epoch: 1, Keys: [][]byte{[]byte("k")}},
		kshakav1.Admin_GetConfig_FullMethodName:  &kshakav1.GetConfigRequest{},
		kshakav1.Admin_SetConfig_FullMethodName:  &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(next)},
		kshakav1.Admin_Status_FullMethodName:     &kshakav1.StatusRequest{},
		kshakav1.Admin_ListKeys_FullMethodName:   &kshakav1.ListKeysRequest{},
		kshakav1.Admin_Collect_FullMethodName: &kshakav1.CollectRequest{Items: []*kshakav1.CollectItem{
			{Key: []byte("k"), Ballot: b(60, 1), Version: 1}}},
		healthgrpc.Health_Check_FullMethodName: &healthgrpc.HealthCheckRequest{},
		healthgrpc.Health_List_FullMethodName:  &healthgrpc.HealthListRequest{},
		healthgrpc.Health_Watch_FullMethodName: &healthgrpc.HealthCheckRequest{},
	}
}

// digest summarizes everything the acceptor has stored: every record, the
// configuration and the number of synced commits.
func digest(t testing.TB, a *Acceptor) [32]byte {
	t.Helper()
	h := sha256.New()
	err := a.store.scan(nil, func(k []byte) bool {
		st, _, err := a.store.get(storageKey(nil, k))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%q=%x;", k, register.AppendState(nil, st))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(h, "config=%v;syncs=%d", a.Config(), a.SyncCount())
	var d [32]byte
	copy(d[:], h.Sum(nil))
	return d
}

func admitTLS(t testing.TB, s *tlsServer) {
	t.Helper()
	if _, err := s.acc.SetConfig(membership.Stable(1, membership.Member{ID: "a0", Addr: s.addr, Incarnation: s.acc.Incarnation()})); err != nil {
		t.Fatal(err)
	}
}

// Every RPC of every service, called by every kind of client over real
// mutual TLS: refused with the code and a message that says why, and with
// nothing written, unless the certificate's role allows it.
func TestRolesOverMutualTLS(t *testing.T) {
	s := startTLS(t, testOptions(t))
	admitTLS(t, s)
	ctx := context.Background()
	for _, id := range []identity{anonymous, otherCA, noRole, clientRole, adminRole} {
		conn := s.dial(id)
		for _, r := range allRPCs(t) {
			t.Run(string(id)+r.full, func(t *testing.T) {
				req := requests(s)[r.full]
				before := digest(t, s.acc)
				err := r.call(ctx, conn, req)
				need := requiredRole(r.full)
				var want codes.Code
				var msg []string
				switch {
				case id == anonymous || id == otherCA:
					want, msg = codes.Unauthenticated, []string{"client certificate required: none was presented"}
				case id == noRole:
					want, msg = codes.PermissionDenied, []string{`"certificate without a role"`, "has role none", r.full, "needs role " + need.String()}
				case id == clientRole && need == pki.RoleAdmin:
					want, msg = codes.PermissionDenied, []string{"has role client", r.full, "needs role admin (O=kshaka:admin)"}
				}
				if want == codes.OK {
					if c := code(err); c == codes.Unauthenticated || c == codes.PermissionDenied {
						t.Fatalf("refused a caller whose role allows it: %v", err)
					}
					return
				}
				wantCode(t, err, want)
				for _, m := range msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				if digest(t, s.acc) != before {
					t.Error("a refused call changed the store")
				}
			})
		}
	}
	t.Run("plaintext against mutual TLS", func(t *testing.T) {
		_, err := kshakav1.NewAdminClient(s.dial("plaintext")).GetConfig(ctx, &kshakav1.GetConfigRequest{})
		wantCode(t, err, codes.Unavailable)
	})
}

// With an admin token, admin calls need both the admin certificate and the
// token; the client's calls need no token.
func TestAdminTokenOverMutualTLS(t *testing.T) {
	opts := testOptions(t)
	opts.AdminToken = "tok"
	s := startTLS(t, opts)
	admitTLS(t, s)
	admin, client := kshakav1.NewAdminClient(s.dial(adminRole)), kshakav1.NewAdminClient(s.dial(clientRole))
	bg := context.Background()
	withToken := metadata.AppendToOutgoingContext(bg, "authorization", "Bearer tok")

	_, err := admin.Status(bg, &kshakav1.StatusRequest{})
	wantCode(t, err, codes.Unauthenticated)
	if !strings.Contains(err.Error(), "admin token required for /kshaka.v1.Admin/Status") {
		t.Errorf("error %q does not say the token is missing", err)
	}
	if _, err := admin.Status(withToken, &kshakav1.StatusRequest{}); err != nil {
		t.Fatalf("admin certificate and token: %v", err)
	}
	_, err = client.Status(withToken, &kshakav1.StatusRequest{})
	wantCode(t, err, codes.PermissionDenied) // the token does not make a client an admin
	if _, err := client.GetConfig(bg, &kshakav1.GetConfigRequest{}); err != nil {
		t.Fatalf("GetConfig as a client without the token: %v", err)
	}
}

// A request over the message limit is refused with RESOURCE_EXHAUSTED and
// nothing written; from a caller without a certificate it is refused as
// unauthenticated before it is read at all.
func TestOversizedRequest(t *testing.T) {
	opts := testOptions(t)
	opts.MaxKeySize, opts.MaxValueSize, opts.MaxMessageSize = 16, 1024, 4096
	s := startTLS(t, opts)
	admitTLS(t, s)
	var items []*kshakav1.AcceptItem
	for i := range 8 {
		items = append(items, acc(fmt.Sprintf("k%d", i), b(5, 1), val(1, strings.Repeat("v", 1000)), nil))
	}
	req := &kshakav1.AcceptRequest{Epoch: 1, Items: items}
	if proto.Size(req) <= opts.MaxMessageSize {
		t.Fatalf("the request is only %d bytes", proto.Size(req))
	}
	before := digest(t, s.acc)
	_, err := kshakav1.NewAcceptorClient(s.dial(clientRole)).Accept(context.Background(), req)
	wantCode(t, err, codes.ResourceExhausted)
	_, err = kshakav1.NewAcceptorClient(s.dial(anonymous)).Accept(context.Background(), req)
	wantCode(t, err, codes.Unauthenticated)
	if digest(t, s.acc) != before {
		t.Error("an oversized request changed the store")
	}
	// One item at the limits still fits.
	if _, err := kshakav1.NewAcceptorClient(s.dial(clientRole)).Accept(context.Background(), &kshakav1.AcceptRequest{Epoch: 1, Items: items[:1]}); err != nil {
		t.Fatalf("one item: %v", err)
	}
}

// A server created without the acceptor's ServerOptions serves nothing.
func TestServerWithoutOptionsServesNothing(t *testing.T) {
	acc, err := Open(testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	acc.Register(srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	defer func() { srv.Stop(); <-done; _ = acc.Close() }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := membership.Stable(1, membership.Member{ID: "a0", Addr: "x:1", Incarnation: acc.Incarnation()})
	_, err = kshakav1.NewAdminClient(conn).SetConfig(context.Background(), &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(cfg)})
	wantCode(t, err, codes.Internal)
	if !strings.Contains(err.Error(), "ServerOptions") || acc.Config().Epoch != 0 {
		t.Errorf("SetConfig on a server without the options: %v, installed epoch %d", err, acc.Config().Epoch)
	}
}
