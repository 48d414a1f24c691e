package acceptor

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

func member(id string, inc uint64) membership.Member {
	return membership.Member{ID: id, Addr: id + ":7400", Incarnation: inc}
}

// TestUnadmittedServesNothing checks docs/design.md §4: without a configuration that
// lists its incarnation the acceptor refuses the data path, while GetConfig
// and Status work.
func TestUnadmittedServesNothing(t *testing.T) {
	n := start(t, testOptions(t))
	ctx := context.Background()
	check := func(stage string) {
		t.Helper()
		_, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 9, Items: []*kshakav1.PrepareItem{prep("x", b(1, 1))}})
		wantCode(t, err, codes.FailedPrecondition)
		if !strings.Contains(err.Error(), "not admitted") {
			t.Errorf("%s: unclear message: %v", stage, err)
		}
		_, err = n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 9, Items: []*kshakav1.AcceptItem{acc("x", b(1, 1), val(1, "a"), nil)}})
		wantCode(t, err, codes.FailedPrecondition)
		_, err = n.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 9, Keys: [][]byte{[]byte("x")}})
		wantCode(t, err, codes.FailedPrecondition)

		gc, err := n.admin.GetConfig(ctx, &kshakav1.GetConfigRequest{})
		if err != nil || gc.Incarnation != n.acc.Incarnation() || gc.Incarnation == 0 {
			t.Fatalf("%s: GetConfig = %v, %v", stage, gc, err)
		}
		st := n.status()
		if st.Admitted || !st.Healthy || st.Incarnation != n.acc.Incarnation() || !strings.Contains(st.Reason, "not admitted") {
			t.Fatalf("%s: Status = %v", stage, st)
		}
		if got := n.healthStatus(""); got != healthgrpc.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("%s: health = %v", stage, got)
		}
		if len(n.contents()) != 0 {
			t.Fatalf("%s: something was written", stage)
		}
	}
	check("no configuration")
	// A configuration that does not list this incarnation.
	n.setConfig(membership.Stable(1, member("other", 42)))
	check("configuration without this incarnation")

	// Admitted: served.
	n.setConfig(membership.Stable(2, member("other", 42), member("self", n.acc.Incarnation())))
	if _, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 2, Items: []*kshakav1.PrepareItem{prep("x", b(1, 1))}}); err != nil {
		t.Fatal(err)
	}
	if st := n.status(); !st.Admitted || st.Reason != "" || st.Epoch != 2 || st.KeyCount != 1 {
		t.Fatalf("Status = %v", st)
	}
}

// TestStaleEpoch checks docs/design.md §3: a request with a lower epoch is refused
// whole with the installed configuration, and nothing is applied; equal and
// higher epochs are served.
func TestStaleEpoch(t *testing.T) {
	n := start(t, testOptions(t))
	cfg := n.admit(5)
	want := wire.ConfigToProto(cfg)
	ctx := context.Background()

	pr, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 4, Items: []*kshakav1.PrepareItem{prep("x", b(1, 1)), prep("y", b(1, 1))}})
	if err != nil || !proto.Equal(pr.StaleConfig, want) || len(pr.Results) != 0 {
		t.Fatalf("stale Prepare = %v, %v", pr, err)
	}
	ar, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 0, Items: []*kshakav1.AcceptItem{acc("x", b(1, 1), val(1, "a"), nil)}})
	if err != nil || !proto.Equal(ar.StaleConfig, want) || len(ar.Results) != 0 {
		t.Fatalf("stale Accept = %v, %v", ar, err)
	}
	rr, err := n.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 1, Keys: [][]byte{[]byte("x")}})
	if err != nil || !proto.Equal(rr.StaleConfig, want) || len(rr.Results) != 0 {
		t.Fatalf("stale Read = %v, %v", rr, err)
	}
	if len(n.contents()) != 0 {
		t.Fatal("a stale request wrote something")
	}
	for _, epoch := range []uint64{5, 6} {
		pr, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: epoch, Items: []*kshakav1.PrepareItem{prep("x", b(epoch, 1))}})
		if err != nil || pr.StaleConfig != nil || !pr.Results[0].Ok {
			t.Fatalf("Prepare at epoch %d = %v, %v", epoch, pr, err)
		}
	}
}

// TestSetConfigRules checks Admin.SetConfig: validation, higher epochs
// installed, the same configuration again a no-op, anything else refused.
func TestSetConfigRules(t *testing.T) {
	n := start(t, testOptions(t))
	inc := n.acc.Incarnation()
	ctx := context.Background()
	e3 := membership.Stable(3, member("a", inc), member("b", 2), member("c", 3))
	n.setConfig(e3)

	bad := e3.Clone()
	bad.Epoch = 9
	bad.PrepareQuorum = 1 // misses accept quorums
	bad.Members[1].Incarnation = 0
	bad.Members[2].Addr = ""
	e3other := membership.Stable(3, member("a", inc), member("b", 2))
	e2 := membership.Stable(2, member("a", inc))
	e4 := membership.Stable(4, member("a", inc), member("b", 2))

	tests := []struct {
		name    string
		cfg     *kshakav1.Config
		want    codes.Code
		msgs    []string
		wantCfg membership.Config // installed afterwards
	}{
		{"missing config", nil, codes.InvalidArgument, []string{"missing"}, e3},
		{"invalid: every problem reported", wire.ConfigToProto(bad), codes.InvalidArgument,
			[]string{"incarnation 0", "no address"}, e3},
		{"unsorted members", &kshakav1.Config{Epoch: 9, PrepareQuorum: 1, AcceptQuorum: 1, Members: []*kshakav1.Member{
			{Id: "z", Addr: "z:1", Incarnation: 1, Prepare: true, Accept: true},
			{Id: "a", Addr: "a:1", Incarnation: 2},
		}}, codes.InvalidArgument, []string{"not sorted", "neither"}, e3},
		{"same epoch, same config: no-op", wire.ConfigToProto(e3), codes.OK, nil, e3},
		{"same epoch, different config", wire.ConfigToProto(e3other), codes.FailedPrecondition, []string{"different"}, e3},
		{"lower epoch", wire.ConfigToProto(e2), codes.FailedPrecondition, []string{"lower"}, e3},
		{"higher epoch", wire.ConfigToProto(e4), codes.OK, nil, e4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := n.acc.SyncCount()
			resp, err := n.admin.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: tt.cfg})
			wantCode(t, err, tt.want)
			for _, m := range tt.msgs {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
			if err == nil && !proto.Equal(resp.Config, wire.ConfigToProto(tt.wantCfg)) {
				t.Errorf("reply config = %v, want %v", resp.Config, tt.wantCfg)
			}
			gc, err := n.admin.GetConfig(ctx, &kshakav1.GetConfigRequest{})
			if err != nil || !proto.Equal(gc.Config, wire.ConfigToProto(tt.wantCfg)) {
				t.Fatalf("installed = %v, %v; want %v", gc, err, tt.wantCfg)
			}
			wantSyncs := uint64(0)
			if tt.wantCfg.Epoch != e3.Epoch {
				wantSyncs = 1
			}
			if got := n.acc.SyncCount() - before; got != wantSyncs {
				t.Errorf("%d syncs, want %d", got, wantSyncs)
			}
		})
	}
}

// TestRestartKeepsEverything: every acknowledged write, the incarnation and
// the configuration survive a restart.
func TestRestartKeepsEverything(t *testing.T) {
	n := start(t, testOptions(t))
	cfg := n.admit(7)
	inc := n.acc.Incarnation()
	ctx := context.Background()
	want := map[string]string{}
	for i := range 50 {
		k := string(rune('a'+i%26)) + string(rune('a'+i/26))
		want[k] = "v-" + k
		r, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 7, Items: []*kshakav1.AcceptItem{acc(k, b(1, 1), val(1, want[k]), b(2, 1))}})
		if err != nil || !r.Results[0].Ok {
			t.Fatalf("Accept: %v, %v", r, err)
		}
	}
	n.restart()
	if n.acc.Incarnation() != inc {
		t.Fatalf("incarnation %x, want %x", n.acc.Incarnation(), inc)
	}
	st := n.status()
	if !proto.Equal(st.Config, wire.ConfigToProto(cfg)) || !st.Admitted || st.KeyCount != uint64(len(want)) {
		t.Fatalf("Status after restart = %v", st)
	}
	if got := n.healthStatus("kshaka.v1.Acceptor"); got != healthgrpc.HealthCheckResponse_SERVING {
		t.Fatalf("health after restart = %v", got)
	}
	for k, v := range want {
		r, err := n.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 7, Keys: [][]byte{[]byte(k)}})
		if err != nil || string(r.Results[0].Value.GetData()) != v || !proto.Equal(r.Results[0].Accepted, b(1, 1)) {
			t.Fatalf("Read(%s) after restart = %v, %v", k, r, err)
		}
		// The 1RTT promise survived too.
		p, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 7, Items: []*kshakav1.PrepareItem{prep(k, b(2, 1))}})
		if err != nil || p.Results[0].Ok || !proto.Equal(p.Results[0].Conflict, b(2, 1)) {
			t.Fatalf("Prepare(%s) after restart = %v, %v", k, p, err)
		}
	}
}

// TestRequestForAnotherIncarnation checks that a request addressed to another
// incarnation (the member that used to be at this address) is refused and
// writes nothing, while requests for this incarnation, or for any, are served.
func TestRequestForAnotherIncarnation(t *testing.T) {
	n := startAdmitted(t, testOptions(t))
	ctx := context.Background()
	other := n.acc.Incarnation() + 1
	_, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Incarnation: other, Items: []*kshakav1.PrepareItem{prep("x", b(1, 1))}})
	wantCode(t, err, codes.FailedPrecondition)
	if !strings.Contains(err.Error(), "meant for incarnation") {
		t.Errorf("unclear message: %v", err)
	}
	_, err = n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Incarnation: other, Items: []*kshakav1.AcceptItem{acc("x", b(1, 1), val(1, "a"), nil)}})
	wantCode(t, err, codes.FailedPrecondition)
	_, err = n.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 1, Incarnation: other, Keys: [][]byte{[]byte("x")}})
	wantCode(t, err, codes.FailedPrecondition)
	if got := n.contents(); len(got) != 0 {
		t.Fatalf("refused requests wrote %v", got)
	}
	for i, inc := range []uint64{0, n.acc.Incarnation()} {
		resp, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Incarnation: inc, Items: []*kshakav1.PrepareItem{prep("x", b(uint64(i)+2, 1))}})
		if err != nil || !resp.Results[0].Ok {
			t.Fatalf("prepare for incarnation %x: %v %v", inc, resp, err)
		}
	}
}
