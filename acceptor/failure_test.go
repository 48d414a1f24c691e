package acceptor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"google.golang.org/grpc/codes"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// TestCrashKeepsSyncedData simulates power loss with vfs.NewCrashableMem:
// the crash clone keeps what was synced and a random part of what was not.
// Every acknowledged write, the incarnation and the configuration must
// survive, whatever unsynced data the crash kept.
func TestCrashKeepsSyncedData(t *testing.T) {
	for _, pct := range []int{0, 50, 100} {
		t.Run(fmt.Sprintf("unsynced kept %d%%", pct), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			n := start(t, memOptions(mem))
			cfg := n.admit(3)
			inc := n.acc.Incarnation()
			ctx := context.Background()

			// Concurrent writers: acknowledged writes must all survive.
			var mu sync.Mutex
			acked := map[string]string{}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					for i := range 25 {
						k := fmt.Sprintf("w%d-k%02d", w, i)
						r, err := n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 3, Items: []*kshakav1.AcceptItem{
							acc(k, b(1, 1), val(1, k), nil), acc(k+"-2", b(1, 1), val(1, k+"-2"), b(2, 1)),
						}})
						if err != nil || !r.Results[0].Ok || !r.Results[1].Ok {
							t.Errorf("Accept(%s) = %v, %v", k, r, err)
							return
						}
						mu.Lock()
						acked[k], acked[k+"-2"] = k, k+"-2"
						mu.Unlock()
					}
				})
			}
			wg.Wait()

			crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(uint64(pct), 1))})
			n.stop()

			m := start(t, memOptions(crashed))
			if m.acc.Incarnation() != inc {
				t.Fatalf("incarnation %x after crash, want %x", m.acc.Incarnation(), inc)
			}
			if got := m.acc.Config(); !configsEqual(got, cfg) {
				t.Fatalf("config after crash = %v, want %v", got, cfg)
			}
			for k, v := range acked {
				r, err := m.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 3, Keys: [][]byte{[]byte(k)}})
				if err != nil || string(r.Results[0].Value.GetData()) != v {
					t.Fatalf("Read(%s) after crash = %v, %v", k, r, err)
				}
			}
			if got := m.status().KeyCount; got != uint64(len(acked)) {
				t.Fatalf("key count after crash = %d, want %d", got, len(acked))
			}
		})
	}
}

// TestCrashKeepsPromisesThroughTheFloor: promises below the durable floor are
// not synced, so a crash may lose them; after the restart the acceptor must
// still refuse what they refused (docs/design.md §2.2: a promise is never broken).
// The crash clone keeps none of the unsynced data, the worst case. The
// acceptor with the floor disabled (restart floor zero) is the negative
// control: it accepts the lower ballot.
func TestCrashKeepsPromisesThroughTheFloor(t *testing.T) {
	for _, floor := range []bool{true, false} {
		t.Run(fmt.Sprintf("floor=%v", floor), func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			n := start(t, memOptions(mem))
			n.admit(1)
			ctx := context.Background()
			prep := func(n *node, key string, bal *kshakav1.Ballot) *kshakav1.PrepareResult {
				t.Helper()
				r, err := n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{{Key: []byte(key), Ballot: bal}}})
				if err != nil {
					t.Fatalf("Prepare(%s, %v): %v", key, bal, err)
				}
				return r.Results[0]
			}
			// The first prepare raises the floor with a sync; the second,
			// below it, is only in memory and the WAL buffer.
			if r := prep(n, "a", b(10, 1)); !r.Ok {
				t.Fatalf("prepare a@10 refused: %v", r)
			}
			syncs := n.acc.SyncCount()
			if r := prep(n, "k", b(20, 1)); !r.Ok {
				t.Fatalf("prepare k@20 refused: %v", r)
			}
			if n.acc.SyncCount() != syncs {
				t.Fatalf("the prepare below the floor was synced")
			}
			crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			n.stop()

			m := start(t, memOptions(crashed))
			if !floor {
				m.acc.floor.restart = 0
			}
			// A proposer that prepared ballot 15 elsewhere now sends its
			// accept: promise 20 must refuse it.
			r, err := m.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc("k", b(15, 2), val(1, "late"), nil)}})
			if err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if floor == r.Results[0].Ok {
				t.Fatalf("floor=%v: accept k@15 after losing promise k@20: ok=%v, want %v", floor, r.Results[0].Ok, !floor)
			}
			if !floor {
				return
			}
			// The refusal shows the floor, so the proposer fast-forwards past it.
			conflict := wire.BallotFromProto(r.Results[0].Conflict)
			if conflict.Counter < 20 {
				t.Fatalf("conflict %v is below the lost promise 20", conflict)
			}
			if r := prep(m, "k", b(conflict.Counter+1, 2)); !r.Ok {
				t.Fatalf("prepare past the floor refused: %v", r)
			}
		})
	}
}

// TestCrashBeforeIncarnationSynced: a crash right after Open either keeps the
// synced incarnation or leaves empty storage that gets a new one; never a
// store without an incarnation that serves.
func TestCrashRightAfterOpen(t *testing.T) {
	mem := vfs.NewCrashableMem()
	n := start(t, memOptions(mem))
	inc := n.acc.Incarnation()
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	n.stop()
	m := start(t, memOptions(crashed))
	if m.acc.Incarnation() != inc {
		t.Fatalf("incarnation %x after crash, want %x (it was synced by Open)", m.acc.Incarnation(), inc)
	}
}

// TestStorageErrorTakesOutOfService injects a WAL write error: the request
// that hit it fails UNAVAILABLE, and from then on the acceptor answers no
// data RPC, reports healthy=false and NOT_SERVING, and never answers ok
// again, even after the disk recovers.
func TestStorageErrorTakesOutOfService(t *testing.T) {
	for name, kind := range map[string]errorfs.OpKind{"WAL write": errorfs.OpFileWrite, "WAL sync": errorfs.OpFileSyncData} {
		t.Run(name, func(t *testing.T) {
			toggle := &errorfs.Toggle{Injector: errorfs.ErrInjected.If(walOp(kind))}
			n := startAdmitted(t, memOptions(errorfs.Wrap(vfs.NewMem(), toggle)))
			ctx := context.Background()
			write := func(k string, counter uint64) (*kshakav1.AcceptResponse, error) {
				return n.data.Accept(ctx, &kshakav1.AcceptRequest{Epoch: 1, Items: []*kshakav1.AcceptItem{acc(k, b(counter, 1), val(counter, k), nil)}})
			}
			if r, err := write("before", 1); err != nil || !r.Results[0].Ok {
				t.Fatalf("Accept before the error = %v, %v", r, err)
			}
			if got := n.healthStatus(""); got != healthgrpc.HealthCheckResponse_SERVING {
				t.Fatalf("health before = %v", got)
			}

			toggle.On()
			_, err := write("during", 1)
			wantCode(t, err, codes.Unavailable)
			toggle.Off() // the disk "recovers"; the acceptor must stay out

			_, err = write("after", 2)
			wantCode(t, err, codes.Unavailable)
			_, err = n.data.Read(ctx, &kshakav1.ReadRequest{Epoch: 1, Keys: [][]byte{[]byte("before")}})
			wantCode(t, err, codes.Unavailable)
			_, err = n.data.Prepare(ctx, &kshakav1.PrepareRequest{Epoch: 1, Items: []*kshakav1.PrepareItem{prep("before", b(9, 1))}})
			wantCode(t, err, codes.Unavailable)
			st := n.status()
			if st.Healthy || !strings.Contains(st.Reason, "storage error") || !strings.Contains(st.Reason, "injected") {
				t.Fatalf("Status = %v", st)
			}
			for _, svc := range healthServices {
				if got := n.healthStatus(svc); got != healthgrpc.HealthCheckResponse_NOT_SERVING {
					t.Fatalf("health(%q) after the error = %v", svc, got)
				}
			}
			_, err = n.admin.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(membership.Stable(9, member("a", n.acc.Incarnation())))})
			wantCode(t, err, codes.Unavailable)
			s, err := n.admin.ListKeys(ctx, &kshakav1.ListKeysRequest{})
			if err == nil {
				_, err = s.Recv()
			}
			wantCode(t, err, codes.Unavailable)
			if !errors.Is(n.acc.Err(), ErrOutOfService) {
				t.Fatalf("Err() = %v", n.acc.Err())
			}
			// Close still works; it reports the storage error.
			n.conn.Close()
			n.srv.GracefulStop()
			<-n.done
			t.Logf("Err() = %v; Close() = %v", n.acc.Err(), n.acc.Close())
			n.acc = nil
		})
	}
}

// walOp matches operations of one kind on WAL files.
type walOp errorfs.OpKind

func (p walOp) String() string { return fmt.Sprintf("(WAL op %d)", int(p)) }
func (p walOp) Evaluate(op errorfs.Op) bool {
	return op.Kind == errorfs.OpKind(p) && strings.HasSuffix(op.Path, ".log")
}

// TestHealthTransitions follows the health service through admission,
// removal from the configuration and Close.
func TestHealthTransitions(t *testing.T) {
	n := start(t, testOptions(t))
	inc := n.acc.Incarnation()
	expect := func(stage string, want healthgrpc.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for _, svc := range healthServices {
			if got := n.healthStatus(svc); got != want {
				t.Fatalf("%s: health(%q) = %v, want %v", stage, svc, got, want)
			}
		}
	}
	expect("fresh", healthgrpc.HealthCheckResponse_NOT_SERVING)
	n.setConfig(membership.Stable(1, member("a", inc)))
	expect("admitted", healthgrpc.HealthCheckResponse_SERVING)
	n.setConfig(membership.Stable(2, member("a", inc), member("b", 2), member("c", 3)))
	expect("still listed", healthgrpc.HealthCheckResponse_SERVING)
	n.setConfig(membership.Stable(3, member("b", 2), member("c", 3)))
	expect("removed", healthgrpc.HealthCheckResponse_NOT_SERVING)
	n.restart()
	expect("restarted while removed", healthgrpc.HealthCheckResponse_NOT_SERVING)
	n.setConfig(membership.Stable(4, member("a", inc), member("b", 2), member("c", 3)))
	expect("re-added", healthgrpc.HealthCheckResponse_SERVING)
	n.restart()
	expect("restarted while admitted", healthgrpc.HealthCheckResponse_SERVING)

	// Close makes it NOT_SERVING before the store goes away.
	if err := n.acc.Close(); err != nil {
		t.Fatal(err)
	}
	expect("closed", healthgrpc.HealthCheckResponse_NOT_SERVING)
	_, err := n.data.Read(context.Background(), &kshakav1.ReadRequest{Epoch: 4, Keys: [][]byte{[]byte("x")}})
	wantCode(t, err, codes.Unavailable)
	if st := n.status(); st.Healthy || !proto.Equal(st.Config, wire.ConfigToProto(n.acc.Config())) {
		t.Fatalf("Status after Close = %v", st)
	}
}
