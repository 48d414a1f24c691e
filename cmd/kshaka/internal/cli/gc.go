package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

func newGCCmd(g *globals) *cobra.Command {
	var (
		retention time.Duration
		batch     int
		dryRun    bool
		progress  string
	)
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove tombstones older than the retention from every acceptor (tombstone GC)",
		Long: `Remove the records of deleted keys whose tombstone is older than --retention
from every acceptor (docs/design.md §10), for a cluster without an operator
('kshaka local', or one you run by hand). On Kubernetes the operator does this.

In batches of --batch candidate tombstones, listed from every member (Admin
ListKeys), gc writes each tombstone to every member with an identity change,
installs the next configuration epoch with the GC floors raised (Admin
SetConfig on every member), waits until every member runs it, and removes the
records (Admin Collect). A key written again since is left alone; a key whose
write missed a member, or that a member kept, is left for the next run. After
gc a deleted key is absent; a compare-and-swap on a version it had still
fails, and a recreated key's versions continue above every version it had.

gc needs every member reachable, and no membership change may run at the same
time. It makes admin calls: under mutual TLS a client certificate with
O=kshaka:admin (--cert, --key), and the admin token (--admin-token or
--admin-token-file) when the acceptors have one; a 'kshaka local' in
./kshaka-data is found by itself.

A summary (scanned, collected, live, skipped, epochs) goes to stdout;
progress after each batch to stderr (--progress). --timeout bounds connecting
and each round of the protocol, not the whole run; Ctrl-C (SIGINT) or SIGTERM
stops it, which is safe at any point (a tombstone written but not removed
stays a tombstone; a floor epoch installed stays installed).`,
		Example: `  kshaka gc --dry-run
  kshaka gc --retention 24h --batch 1000
  kshaka gc --retention 1h --progress json --endpoints 127.0.0.1:7400 --admin-token-file tmp/local/admin-token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case retention <= 0:
				return usageErrorf("--retention must be positive, not %v", retention)
			case batch < 1 || batch > 100000:
				return usageErrorf("--batch must be between 1 and 100000, not %d", batch)
			}
			if err := checkProgress(progress); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return g.runGC(ctx, retention, batch, dryRun, progress)
		},
	}
	cmd.Flags().DurationVar(&retention, "retention", proposer.DefaultGCRetention, "collect only tombstones older than this")
	cmd.Flags().IntVar(&batch, "batch", proposer.DefaultGCBatchSize, "candidate tombstones per floor epoch")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only list and count the candidate tombstones")
	cmd.Flags().StringVar(&progress, "progress", progressAuto, "progress on stderr after each batch: text, json (one JSON object per line) or none (default: text on a terminal, none otherwise)")
	return cmd
}

func (g *globals) runGC(ctx context.Context, retention time.Duration, batch int, dryRun bool, progress string) error {
	start := time.Now()
	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.p.Close()
	mode := progress
	if mode == progressAuto {
		mode = progressNone
		if isTerminal(g.errw) {
			mode = progressText
		}
	}
	report := func(st proposer.GCStats) {
		switch mode {
		case progressText:
			fmt.Fprintf(g.errw, "gc: scanned %d, collected %d, live %d, skipped %d, epochs %d (%s)\n",
				st.Scanned, st.Collected, st.Live, st.Skipped, st.Epochs, time.Since(start).Round(time.Millisecond))
		case progressJSON:
			_ = json.NewEncoder(g.errw).Encode(gcJSON(st, time.Since(start)))
		}
	}
	install := proposer.InstallWithSetConfig(func(addr string) (kshakav1.AdminClient, func() error, error) {
		conn, err := dialAdmin(addr, s.tlsCfg, s.token)
		if err != nil {
			return nil, nil, err
		}
		return conn, conn.Close, nil
	})
	st, err := s.p.CollectTombstones(ctx, proposer.GCOptions{
		Retention:  retention,
		BatchSize:  batch,
		Install:    install,
		AdminToken: s.token,
		DryRun:     dryRun,
		Progress:   report,
	})
	if err != nil {
		return fmt.Errorf("tombstone GC stopped after scanning %d and collecting %d: %w", st.Scanned, st.Collected, err)
	}
	verb := "collected"
	if dryRun {
		verb = "would collect up to"
	}
	fmt.Fprintf(g.out, "scanned %d tombstones older than %v; %s %d; %d live again, %d left for a later run; %d floor epochs in %s\n",
		st.Scanned, retention, verb, st.Collected, st.Live, st.Skipped, st.Epochs, time.Since(start).Round(time.Millisecond))
	return nil
}

func gcJSON(st proposer.GCStats, d time.Duration) map[string]any {
	return map[string]any{"scanned": st.Scanned, "collected": st.Collected, "live": st.Live,
		"skipped": st.Skipped, "epochs": st.Epochs, "seconds": d.Seconds()}
}
