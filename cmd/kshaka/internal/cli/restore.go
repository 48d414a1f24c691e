package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kshaka-io/kshaka/internal/backup"
	"github.com/kshaka-io/kshaka/proposer"
)

func newRestoreCmd(g *globals) *cobra.Command {
	var (
		o          transferOptions
		from       string
		verifyOnly bool
	)
	cmd := &cobra.Command{
		Use:   "restore --from FILE",
		Short: "Check a backup file, then write its keys into a new, empty cluster",
		Long: `Check a backup file written by 'kshaka backup', then write every key of it, with
its version (tombstones included), into the cluster: versions keep counting
from the backup, never reused.

The whole file is verified first (format, limits, key order, record count,
SHA-256): a corrupt, truncated or foreign file is refused with exit code 8
before anything is written. --verify-only stops there and prints the
backup's summary.

Restore is meant for a new, empty cluster. Each key is written through a
normal round only if the cluster does not have it yet; a key that already
holds exactly the backed-up value is left as it is, so running the same
restore again after an interruption completes it. A key that holds anything
else stops the restore with an error naming it (exit code 4); keys already
written stay.

The proposer writes data keys only: under mutual TLS a client certificate
with O=kshaka:client (or O=kshaka:admin) is enough.

` + timeoutHelp,
		Example: `  kshaka restore --verify-only --from kshaka-2026-12-04.kbk
  kshaka restore --from kshaka-2026-12-04.kbk --endpoints 127.0.0.1:7400
  kshaka restore --from /backups/b.kbk --progress json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch from {
			case "":
				return usageErrorf("--from is required: the backup file to restore")
			case "-":
				return usageErrorf("--from - is not supported: restore reads the file twice (verify, then restore); save it to a file first")
			}
			if err := o.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return g.runRestore(ctx, from, verifyOnly, o)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the backup file to restore")
	cmd.Flags().BoolVar(&verifyOnly, "verify-only", false, "only check the file and print its summary; write nothing")
	o.add(cmd.Flags())
	return cmd
}

// corrupt marks a backup file that failed verification.
func corrupt(path string, err error) error {
	return &exitError{code: ExitCorrupt, err: fmt.Errorf("%s: %w", path, err),
		advice: "The file is not a complete, intact kshaka backup; nothing was restored.\n" +
			"Use another copy of the backup, or take a new one with 'kshaka backup'."}
}

// verifyFile reads the whole backup at path, reporting progress.
func verifyFile(ctx context.Context, path string, pr *progress) (backup.Header, backup.Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return backup.Header{}, backup.Summary{}, fmt.Errorf("while opening the backup: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return backup.Header{}, backup.Summary{}, fmt.Errorf("while opening the backup: %w", err)
	}
	var st backup.Stats
	var rd *backup.Reader
	pr.setPhase("verifying", func() (int64, int64, int64, float64) {
		pct := 0.0
		if fi.Size() > 0 && rd != nil {
			pct = min(99, 100*float64(rd.Offset())/float64(fi.Size()))
		}
		return st.Keys.Load(), st.Bytes.Load(), 0, pct
	})
	r, err := backup.NewReader(f)
	if err != nil {
		return backup.Header{}, backup.Summary{}, corrupt(path, err)
	}
	pr.mu.Lock()
	rd = r
	pr.mu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return backup.Header{}, backup.Summary{}, err
		}
		rec, err := r.Next()
		if err == io.EOF {
			return r.Header(), r.Summary(), nil
		}
		if errors.Is(err, backup.ErrCorrupt) {
			return backup.Header{}, backup.Summary{}, corrupt(path, err)
		}
		if err != nil {
			return backup.Header{}, backup.Summary{}, err
		}
		st.Keys.Add(1)
		st.Bytes.Add(int64(len(rec.Data)))
	}
}

func (g *globals) runRestore(ctx context.Context, path string, verifyOnly bool, o transferOptions) (err error) {
	start := time.Now()
	pr := newProgress(o.progress, g.errw, path, func(phase string) string {
		switch phase {
		case "failed":
			return "restore"
		case "done":
			if verifyOnly {
				return "verified"
			}
		}
		return "restored"
	})
	defer func() { pr.finish("", err) }() // after a failure

	hdr, sum, err := verifyFile(ctx, path, pr)
	if err != nil {
		return err
	}
	if verifyOnly {
		pr.finish(sum.SHA256Hex(), nil)
		fmt.Fprintf(g.out, "backup: %s (intact)\ncreated: %s\n", path, hdr.Created.Format(time.RFC3339))
		if hdr.Cluster != "" {
			fmt.Fprintf(g.out, "cluster: %s\n", hdr.Cluster)
		}
		if hdr.Epoch != 0 {
			fmt.Fprintf(g.out, "epoch: %d\n", hdr.Epoch)
		}
		if hdr.KshakaVersion != "" {
			fmt.Fprintf(g.out, "written by: %s\n", hdr.KshakaVersion)
		}
		printSummary(g.out, "", "", sum, 0)
		return nil
	}

	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.p.Close()
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("while opening the backup: %w", err)
	}
	defer f.Close()
	r, err := backup.NewReader(f)
	if err != nil {
		return corrupt(path, err)
	}
	var st backup.Stats
	pr.setPhase("restoring", func() (int64, int64, int64, float64) {
		return st.Keys.Load(), st.Bytes.Load(), sum.Keys, -1
	})
	restore := func(ctx context.Context, key []byte, rec proposer.Record) error {
		return g.perKey(ctx, func(ctx context.Context) error { return s.p.Restore(ctx, key, rec) })
	}
	if err := backup.Load(ctx, r, restore, o.concurrency, &st); err != nil {
		return restoreFailed(path, err)
	}
	if got := r.Summary(); got.SHA256 != sum.SHA256 {
		return corrupt(path, fmt.Errorf("the file changed between verification (sha256 %s) and restore (sha256 %s)", sum.SHA256Hex(), got.SHA256Hex()))
	}
	pr.finish(sum.SHA256Hex(), nil)
	printSummary(g.out, "restored", path, sum, time.Since(start))
	return nil
}

// restoreFailed explains a restore that stopped part way.
func restoreFailed(path string, err error) error {
	rerun := fmt.Sprintf("Keys restored so far stay; once the cause is fixed, run the same restore again:\n"+
		"it skips the keys that already hold their backed-up value ('kshaka restore --from %s').", path)
	switch {
	case errors.Is(err, backup.ErrCorrupt):
		return corrupt(path, err)
	case errors.Is(err, proposer.ErrRestoreConflict):
		return &exitError{code: ExitVersionMismatch, err: err, advice: "Restore writes only into keys the cluster does not have: restore into a new, empty cluster.\n" +
			"Keys restored before this one stay."}
	case errors.Is(err, proposer.ErrUnknownOutcome):
		return &exitError{code: ExitUnknownOutcome, err: err, advice: "The key's write may or may not have happened. " + rerun}
	}
	ee := classify(err)
	if ee.advice != "" {
		ee.advice += "\n"
	}
	ee.advice += rerun
	return ee
}
