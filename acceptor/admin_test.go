package acceptor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/kshaka-io/kshaka/internal/wire"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

func TestAdminToken(t *testing.T) {
	opts := testOptions(t)
	opts.AdminToken = "s3cret"
	n := start(t, opts)
	bg := context.Background()
	with := func(v string) context.Context { return metadata.AppendToOutgoingContext(bg, "authorization", v) }

	calls := map[string]func(ctx context.Context) error{
		"GetConfig": func(ctx context.Context) error {
			_, err := n.admin.GetConfig(ctx, &kshakav1.GetConfigRequest{})
			return err
		},
		"Status": func(ctx context.Context) error {
			_, err := n.admin.Status(ctx, &kshakav1.StatusRequest{})
			return err
		},
		"SetConfig": func(ctx context.Context) error {
			_, err := n.admin.SetConfig(ctx, &kshakav1.SetConfigRequest{Config: wire.ConfigToProto(n.acc.Config())})
			return err
		},
		"ListKeys": func(ctx context.Context) error {
			s, err := n.admin.ListKeys(ctx, &kshakav1.ListKeysRequest{})
			if err != nil {
				return err
			}
			for {
				if _, err := s.Recv(); err != nil {
					if errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		},
	}
	tests := []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"no token", bg, codes.Unauthenticated},
		{"wrong token", with("Bearer nope"), codes.Unauthenticated},
		{"no Bearer scheme", with("s3cret"), codes.Unauthenticated},
		{"right token", with("Bearer s3cret"), codes.OK},
	}
	for _, tt := range tests {
		for name, call := range calls {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				// SetConfig with the empty installed config is refused as
				// invalid once authenticated; that is fine here.
				err := call(tt.ctx)
				got, want := code(err), tt.want
				if name == "SetConfig" && want == codes.OK && got == codes.InvalidArgument {
					return
				}
				if name == "GetConfig" {
					want = codes.OK // clients call it: it needs no admin token
				}
				if got != want {
					t.Fatalf("%s: %v, want %v", name, err, want)
				}
			})
		}
	}
	// The data path needs no token.
	_, err := n.data.Read(bg, &kshakav1.ReadRequest{Epoch: 1, Keys: [][]byte{[]byte("x")}})
	wantCode(t, err, codes.FailedPrecondition) // not admitted, but not Unauthenticated
}

func listKeys(t *testing.T, n *node, req *kshakav1.ListKeysRequest) (pages [][][]byte) {
	t.Helper()
	s, err := n.admin.ListKeys(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return pages
		}
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, resp.Keys)
	}
}

func TestListKeys(t *testing.T) {
	n := startAdmitted(t, testOptions(t))
	// Keys written out of order, some binary, across several batches.
	var all [][]byte
	for i := 24; i >= 0; i-- {
		all = append(all, []byte(fmt.Sprintf("key-%02d", i)))
	}
	all = append(all, []byte{0}, []byte{0xff, 0xff}, []byte("m/cfg"))
	for chunk := range slices.Chunk(all, 7) {
		req := &kshakav1.PrepareRequest{Epoch: 1}
		for _, k := range chunk {
			req.Items = append(req.Items, &kshakav1.PrepareItem{Key: k, Ballot: b(1, 1)})
		}
		if _, err := n.data.Prepare(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	sorted := slices.Clone(all)
	slices.SortFunc(sorted, bytes.Compare)

	tests := []struct {
		name      string
		req       *kshakav1.ListKeysRequest
		want      [][]byte
		wantPages []int
	}{
		{"everything in one default page", &kshakav1.ListKeysRequest{}, sorted, []int{len(sorted)}},
		{"pages of 10", &kshakav1.ListKeysRequest{PageSize: 10}, sorted, []int{10, 10, 8}},
		{"pages that divide evenly", &kshakav1.ListKeysRequest{PageSize: 7}, sorted, []int{7, 7, 7, 7}},
		{"limit", &kshakav1.ListKeysRequest{PageSize: 4, Limit: 9}, sorted[:9], []int{4, 4, 1}},
		{"start after", &kshakav1.ListKeysRequest{StartAfter: []byte("key-10"), PageSize: 100}, keysAfter(sorted, "key-10"), nil},
		{"start after a missing key", &kshakav1.ListKeysRequest{StartAfter: []byte("key-10a")}, keysAfter(sorted, "key-10a"), nil},
		{"start after the last key", &kshakav1.ListKeysRequest{StartAfter: []byte{0xff, 0xff}}, nil, []int{}},
		{"start after and limit", &kshakav1.ListKeysRequest{StartAfter: []byte("key-03"), Limit: 2}, [][]byte{[]byte("key-04"), []byte("key-05")}, []int{2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pages := listKeys(t, n, tt.req)
			var got [][]byte
			var sizes []int
			for _, p := range pages {
				got = append(got, p...)
				sizes = append(sizes, len(p))
			}
			if !slices.EqualFunc(got, tt.want, bytes.Equal) {
				t.Fatalf("keys = %q, want %q", got, tt.want)
			}
			if tt.wantPages != nil && !slices.Equal(sizes, tt.wantPages) && (len(sizes) != 0 || len(tt.wantPages) != 0) {
				t.Fatalf("page sizes = %v, want %v", sizes, tt.wantPages)
			}
		})
	}
	// Metadata is not listed, and the count matches.
	if st := n.status(); st.KeyCount != uint64(len(all)) {
		t.Fatalf("key count = %d, want %d", st.KeyCount, len(all))
	}
}

func keysAfter(sorted [][]byte, after string) [][]byte {
	i, _ := slices.BinarySearchFunc(sorted, []byte(after), bytes.Compare)
	for i < len(sorted) && string(sorted[i]) <= after {
		i++
	}
	return sorted[i:]
}

// TestOptionsValidate: every problem is reported at once.
func TestOptionsValidate(t *testing.T) {
	o := Options{MaxKeySize: -1, MaxBatchItems: -3, MaxValueSize: 10 << 20, MaxMessageSize: 1 << 20,
		LockStripes: -1, MemTableSize: 10, L0CompactionThreshold: 50, L0StopWritesThreshold: 10, WALMinSyncInterval: -1}
	o.EnsureDefaults()
	err := o.Validate()
	for _, m := range []string{"Dir", "MaxKeySize", "MaxBatchItems", "MaxMessageSize", "LockStripes", "MemTableSize",
		"L0StopWritesThreshold 10 is below", "WALMinSyncInterval"} {
		if err == nil || !strings.Contains(err.Error(), m) {
			t.Errorf("Validate() = %v; does not mention %s", err, m)
		}
	}
	if !errors.Is(err, ErrOptions) {
		t.Errorf("not ErrOptions: %v", err)
	}
	if _, err := Open(Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("Open(Options{}) = %v", err)
	}
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Dir: "/x", MaxBallotLead: -time.Second}, "MaxBallotLead -1s must be at least 1µs"},
		{Options{Dir: "/x", MaxBallotLead: time.Second, PromiseFloorStep: 1_000_001}, "PromiseFloorStep 1000001 is more than MaxBallotLead 1s"},
	} {
		tc.o.EnsureDefaults()
		if err := tc.o.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v; does not say %q", err, tc.want)
		}
	}
	good := Options{Dir: "/x", FS: vfs.NewMem()}
	good.EnsureDefaults()
	if err := good.Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}
