package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/adminclient"
	"github.com/kshaka-io/kshaka/internal/backup"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/proposer"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// maxConcurrency bounds --concurrency.
const maxConcurrency = 4096

type transferOptions struct {
	concurrency int
	progress    string
}

func (o *transferOptions) add(fs *pflag.FlagSet) {
	fs.IntVar(&o.concurrency, "concurrency", backup.DefaultConcurrency, "keys in flight at once")
	fs.StringVar(&o.progress, "progress", progressAuto, "progress on stderr: text, json (one JSON object per line, at most every second, and a final one) or none (default: text on a terminal, none otherwise)")
}

func (o *transferOptions) check() error {
	if o.concurrency < 1 || o.concurrency > maxConcurrency {
		return usageErrorf("--concurrency must be between 1 and %d, not %d", maxConcurrency, o.concurrency)
	}
	return checkProgress(o.progress)
}

const consistencyHelp = `Consistency: each key's value is linearizable at the moment it was read (a
quorum read, or an identity round when the acceptors disagree); the backup is
NOT a snapshot across keys. Writes that run during the backup may or may not
be in it, key by key.`

const timeoutHelp = `--timeout bounds connecting and each key's read or write, not the whole
command, which runs until every key is done; Ctrl-C (SIGINT) or SIGTERM stops
it.`

func newBackupCmd(g *globals) *cobra.Command {
	var (
		o       transferOptions
		out     string
		cluster string
	)
	cmd := &cobra.Command{
		Use:   "backup --out FILE",
		Short: "Write every key of the cluster, with its version, to a backup file",
		Long: `Write every key of the cluster to a backup file: its latest chosen value and
version, and for a deleted key its tombstone with the version of the delete,
so that versions never go backwards after a restore.

The keys are listed from a prepare quorum of the configuration's acceptors
(Admin ListKeys, merged: every key chosen on any accept quorum is seen, since
the quorums intersect), then each is read through the protocol like
'kshaka get', --concurrency keys at a time.

` + consistencyHelp + `

Listing keys is an admin call: under mutual TLS it needs a client certificate
with O=kshaka:admin (--cert, --key), and the admin token (--admin-token or
--admin-token-file) when the acceptors have one; a 'kshaka local' in
./kshaka-data is found by itself.

The file is written to FILE.partial, synced and renamed to FILE only when
complete (an existing FILE is replaced), so a failed or interrupted backup
never leaves a file that looks complete. --out - writes to stdout instead.
The format is versioned and ends with the record count and a SHA-256 of
everything before it; 'kshaka restore --verify-only --from FILE' checks it.

On success the summary (keys, tombstones, data bytes, file size, sha256,
duration) goes to stdout, or to stderr with --out -. Progress goes to
stderr (--progress).

` + timeoutHelp,
		Example: `  kshaka backup --out kshaka-2026-12-04.kbk
  kshaka backup --out - --progress json | gzip > backup.kbk.gz
  kshaka backup --out /backups/b.kbk --endpoints kc.ns.svc:7400 \
      --cacert ca.crt --cert admin.crt --key admin.key --admin-token-file token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("--out is required: a file name, or - for stdout")
			}
			if err := o.check(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return g.runBackup(ctx, out, cluster, o)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the backup file to write (- for stdout)")
	cmd.Flags().StringVar(&cluster, "cluster-name", "", "a name for the source cluster, recorded in the backup's header (e.g. namespace/name)")
	o.add(cmd.Flags())
	return cmd
}

// session is a proposer and the admin connections of the members, for
// backup and restore.
type session struct {
	p      *proposer.Client
	cfg    membership.Config
	tlsCfg *tls.Config
	token  string
}

func (g *globals) connect(ctx context.Context) (*session, error) {
	tlsCfg, err := g.client.tlsConfig()
	if err != nil {
		return nil, err
	}
	token, err := g.client.token()
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, g.client.timeout)
	defer cancel()
	p, err := proposer.New(cctx, proposer.Config{
		Endpoints:      g.client.endpoints,
		TLS:            tlsCfg,
		DialTimeout:    g.client.timeout,
		RequestTimeout: min(g.client.timeout, proposer.DefaultRequestTimeout),
	})
	if err != nil {
		return nil, fmt.Errorf("while connecting to %v: %w", g.client.endpoints, err)
	}
	return &session{p: p, cfg: p.Config(), tlsCfg: tlsCfg, token: token}, nil
}

// perKey runs fn with --timeout.
func (g *globals) perKey(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, g.client.timeout)
	defer cancel()
	return fn(ctx)
}

// listSources dials the Admin service of every member of the prepare set
// and asks each for its status: the largest key count is the estimate of
// the keys to back up. It fails unless a prepare quorum answers.
func (g *globals) listSources(ctx context.Context, s *session) (_ []backup.Source, estimate int64, closeAll func(), err error) {
	var conns []*adminclient.Conn
	closeConns := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	defer func() {
		if err != nil {
			closeConns()
		}
	}()
	var sources []backup.Source
	var errs []error
	access := false
	for _, m := range s.cfg.PrepareSet() {
		conn, err := dialAdmin(m.Addr, s.tlsCfg, s.token)
		if err != nil {
			return nil, 0, nil, err
		}
		conns = append(conns, conn)
		sctx, cancel := context.WithTimeout(ctx, g.client.timeout)
		st, err := conn.Status(sctx, &kshakav1.StatusRequest{})
		cancel()
		if err != nil {
			switch status.Code(err) {
			case codes.Unauthenticated, codes.PermissionDenied:
				access = true
			}
			errs = append(errs, fmt.Errorf("%s (%s): %s", m.ID, m.Addr, describeRPCError(err)))
			continue
		}
		estimate = max(estimate, int64(st.GetKeyCount()))
		sources = append(sources, backup.Source{Name: fmt.Sprintf("%s (%s)", m.ID, m.Addr), Page: backup.ListKeysPages(conn)})
	}
	if len(sources) < s.cfg.PrepareQuorum {
		err := fmt.Errorf("only %d of the prepare set's %d acceptors answered, %d are needed to list every key: %w",
			len(sources), len(s.cfg.PrepareSet()), s.cfg.PrepareQuorum, errors.Join(errs...))
		if access {
			return nil, 0, nil, &exitError{code: ExitAccess, err: err, advice: "Listing keys is an admin call: use a client certificate with O=kshaka:admin (--cert, --key)\n" +
				"and the admin token (--admin-token or --admin-token-file) when the acceptors have one."}
		}
		return nil, 0, nil, withCode(ExitUnreachable, err)
	}
	return sources, estimate, closeConns, nil
}

func (g *globals) runBackup(ctx context.Context, out, cluster string, o transferOptions) (err error) {
	start := time.Now()
	path := out
	if out == "-" {
		path = ""
	}
	pr := newProgress(o.progress, g.errw, path, func(phase string) string {
		if phase == "failed" {
			return "backup"
		}
		return "backed up"
	})
	defer func() { pr.finish("", err) }() // after a failure
	pr.setPhase("listing", nil)

	s, err := g.connect(ctx)
	if err != nil {
		return err
	}
	defer s.p.Close()
	sources, estimate, closeAll, err := g.listSources(ctx, s)
	if err != nil {
		return err
	}
	defer closeAll()

	w := g.out
	var f *backup.File
	if out != "-" {
		if f, err = backup.Create(out); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				_ = f.Abort()
			}
		}()
		w = f
	}
	bw, err := backup.NewWriter(w, backup.Header{
		Created:       start,
		Endpoints:     g.client.endpoints,
		Cluster:       cluster,
		Epoch:         s.cfg.Epoch,
		KshakaVersion: versionString(),
	})
	if err != nil {
		return err
	}
	var st backup.Stats
	pr.setPhase("reading", func() (int64, int64, int64, float64) {
		return st.Keys.Load(), st.Bytes.Load(), max(estimate, st.Keys.Load()), -1
	})
	export := func(ctx context.Context, key []byte) (r proposer.Record, err error) {
		err = g.perKey(ctx, func(ctx context.Context) error {
			r, err = s.p.Export(ctx, key)
			return err
		})
		return r, err
	}
	keys := backup.MergeKeys(sources, s.cfg.PrepareQuorum, backup.DefaultPageSize)
	if err := backup.Dump(ctx, keys, export, bw, o.concurrency, &st); err != nil {
		err = fmt.Errorf("backup failed, no backup was written: %w", err)
		if ee := classify(err); ee.code == ExitUsage {
			// A key the proposer refuses is not a bad command line.
			return withCode(ExitError, err)
		}
		return err
	}
	sum, err := bw.Close()
	if err != nil {
		return err
	}
	if f != nil {
		if err := f.Commit(); err != nil {
			return err
		}
	}
	pr.finish(sum.SHA256Hex(), nil)
	summaryTo := g.out
	if out == "-" {
		summaryTo = g.errw
	}
	printSummary(summaryTo, "backup", path, sum, time.Since(start))
	return nil
}

// printSummary writes the summary of a backup file as "name: value" lines:
// what (backup, restored) and path first when path is set, the duration
// and rate last when took is positive.
func printSummary(w io.Writer, what, path string, sum backup.Summary, took time.Duration) {
	if path != "" {
		fmt.Fprintf(w, "%s: %s\n", what, path)
	}
	fmt.Fprintf(w, "keys: %d\ntombstones: %d\nbytes: %d\nsize: %d\nsha256: %s\n",
		sum.Keys, sum.Tombstones, sum.Bytes, sum.Size, sum.SHA256Hex())
	if took > 0 {
		fmt.Fprintf(w, "duration: %s\nkeys/s: %.0f\n", took.Round(time.Millisecond), float64(sum.Keys)/took.Seconds())
	}
}
