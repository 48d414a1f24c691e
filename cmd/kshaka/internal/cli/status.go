package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/wire"
	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// memberStatus is what one acceptor reported, or why it did not.
type memberStatus struct {
	ID          string `json:"id"`
	Addr        string `json:"addr"`
	Reachable   bool   `json:"reachable"`
	Incarnation uint64 `json:"incarnation,omitempty"`
	Epoch       uint64 `json:"epoch,omitempty"`
	Admitted    bool   `json:"admitted"`
	Healthy     bool   `json:"healthy"`
	Keys        uint64 `json:"keys"`
	// Serving: reachable, healthy, admitted, and the incarnation the
	// configuration lists — it counts towards quorums.
	Serving bool   `json:"serving"`
	Note    string `json:"note,omitempty"`

	config membership.Config
}

// clusterStatus is the status command's report.
type clusterStatus struct {
	Config      *jsonConfig    `json:"config"`
	Members     []memberStatus `json:"members"`
	PrepareUp   int            `json:"prepare_serving"`
	AcceptUp    int            `json:"accept_serving"`
	QuorumReady bool           `json:"quorum_healthy"`
}

type jsonConfig struct {
	Epoch         uint64   `json:"epoch"`
	Prepare       []string `json:"prepare_set"`
	Accept        []string `json:"accept_set"`
	PrepareQuorum int      `json:"prepare_quorum"`
	AcceptQuorum  int      `json:"accept_quorum"`
	Stable        bool     `json:"stable"`
	// The tombstone GC's floors (docs/design.md §10), when a GC ran.
	RemovedBallot string `json:"removed_ballot,omitempty"`
	VersionFloor  uint64 `json:"version_floor,omitempty"`
}

func newJSONConfig(c membership.Config) *jsonConfig {
	j := &jsonConfig{Epoch: c.Epoch, PrepareQuorum: c.PrepareQuorum, AcceptQuorum: c.AcceptQuorum, Stable: c.IsStable(),
		VersionFloor: c.VersionFloor}
	if !c.RemovedBallot.IsZero() {
		j.RemovedBallot = c.RemovedBallot.String()
	}
	for _, m := range c.PrepareSet() {
		j.Prepare = append(j.Prepare, m.ID)
	}
	for _, m := range c.AcceptSet() {
		j.Accept = append(j.Accept, m.ID)
	}
	return j
}

func newStatusCmd(g *globals) *cobra.Command {
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show every acceptor of the configuration and whether a quorum is healthy",
		Long: `Show the cluster's configuration and the status of each of its acceptors, and
whether a quorum is healthy.

The configuration with the highest epoch among the --endpoints is used; then
every member of it is asked for its status (Admin.Status, an admin call: under
mutual TLS it needs a client certificate with O=kshaka:admin, and the admin
token, --admin-token or --admin-token-file, when the acceptors have one; a
'kshaka local' in ./kshaka-data is found by itself). A member serves when it answers,
is healthy (no storage error), is admitted by its installed configuration and
reports the incarnation the configuration lists. The quorum is healthy when
the serving members include a prepare quorum of P and an accept quorum of S.

Exits with 0 when the quorum is healthy and 6 when it is not.`,
		Example: `  kshaka status
  kshaka status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(false); err != nil {
				return err
			}
			tlsCfg, err := g.client.tlsConfig()
			if err != nil {
				return err
			}
			token, err := g.client.token()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), g.client.timeout)
			defer cancel()
			st, err := collectStatus(ctx, g.client.endpoints, tlsCfg, token)
			if err != nil {
				return err
			}
			if o.format == outJSON {
				if err := writeJSON(g.out, st); err != nil {
					return err
				}
			} else {
				printStatus(g.out, st)
			}
			if !st.QuorumReady {
				return withCode(ExitUnreachable, errors.New("no healthy quorum"))
			}
			return nil
		},
	}
	o.add(cmd.Flags(), false)
	return cmd
}

// collectStatus asks every endpoint, then every member of the highest
// configuration found, for its status.
func collectStatus(ctx context.Context, endpoints []string, tlsCfg *tls.Config, token string) (*clusterStatus, error) {
	seeds := make([]memberStatus, len(endpoints))
	for i, ep := range endpoints {
		seeds[i] = memberStatus{ID: "-", Addr: ep}
	}
	queryAll(ctx, seeds, tlsCfg, token)
	var cfg membership.Config
	for _, s := range seeds {
		if s.config.Epoch > cfg.Epoch {
			cfg = s.config
		}
	}
	if cfg.Epoch == 0 {
		st := &clusterStatus{Members: seeds}
		for _, s := range seeds {
			if s.Reachable {
				return st, nil // printed as "no configuration installed"
			}
		}
		var notes []string
		for _, s := range seeds {
			notes = append(notes, s.Addr+": "+s.Note)
		}
		return nil, withCode(ExitUnreachable, fmt.Errorf("no acceptor reported its status:\n  %s", strings.Join(notes, "\n  ")))
	}

	members := make([]memberStatus, len(cfg.Members))
	for i, m := range cfg.Members {
		members[i] = memberStatus{ID: m.ID, Addr: m.Addr}
	}
	queryAll(ctx, members, tlsCfg, token)
	st := &clusterStatus{Config: newJSONConfig(cfg), Members: members}
	for i, m := range cfg.Members {
		s := &st.Members[i]
		switch {
		case !s.Reachable:
		case s.Incarnation != m.Incarnation:
			s.note(fmt.Sprintf("incarnation %x is not the configuration's %x: storage lost or replaced; needs a membership change", s.Incarnation, m.Incarnation))
		case !s.Healthy || !s.Admitted:
		default:
			s.Serving = true
			if s.Epoch < cfg.Epoch {
				s.note(fmt.Sprintf("still on epoch %d (not fenced)", s.Epoch))
			}
		}
		if s.Serving && m.Prepare {
			st.PrepareUp++
		}
		if s.Serving && m.Accept {
			st.AcceptUp++
		}
	}
	st.QuorumReady = st.PrepareUp >= cfg.PrepareQuorum && st.AcceptUp >= cfg.AcceptQuorum
	return st, nil
}

func (s *memberStatus) note(n string) {
	if s.Note != "" {
		s.Note += "; "
	}
	s.Note += n
}

// queryAll fills in each entry from its acceptor's Status, in parallel.
func queryAll(ctx context.Context, ms []memberStatus, tlsCfg *tls.Config, token string) {
	var wg sync.WaitGroup
	for i := range ms {
		wg.Go(func() { queryOne(ctx, &ms[i], tlsCfg, token) })
	}
	wg.Wait()
}

func queryOne(ctx context.Context, s *memberStatus, tlsCfg *tls.Config, token string) {
	conn, err := dialAdmin(s.Addr, tlsCfg, token)
	if err != nil {
		s.note(err.Error())
		return
	}
	defer func() { _ = conn.Close() }()
	resp, err := conn.Status(ctx, &kshakav1.StatusRequest{})
	if err != nil {
		s.note(describeRPCError(err))
		return
	}
	s.Reachable = true
	s.Incarnation = resp.GetIncarnation()
	s.Epoch = resp.GetEpoch()
	s.Admitted = resp.GetAdmitted()
	s.Healthy = resp.GetHealthy()
	s.Keys = resp.GetKeyCount()
	s.config = wire.ConfigFromProto(resp.GetConfig())
	if r := resp.GetReason(); r != "" {
		s.note(r)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func printStatus(w io.Writer, st *clusterStatus) {
	if st.Config == nil {
		fmt.Fprintln(w, "No configuration is installed on any reachable acceptor (has the operator, or kshaka local, set one up?).")
	} else {
		c := st.Config
		kind := "joint (membership change in progress)"
		if c.Stable {
			kind = "stable"
		}
		fmt.Fprintf(w, "Configuration: epoch %d, %s\n", c.Epoch, kind)
		fmt.Fprintf(w, "  prepare set P: %s, quorum %d of %d\n", strings.Join(c.Prepare, ","), c.PrepareQuorum, len(c.Prepare))
		fmt.Fprintf(w, "  accept set S:  %s, quorum %d of %d\n", strings.Join(c.Accept, ","), c.AcceptQuorum, len(c.Accept))
		if c.RemovedBallot != "" || c.VersionFloor > 0 {
			fmt.Fprintf(w, "  GC floors:     removed ballot %s, version floor %d\n", c.RemovedBallot, c.VersionFloor)
		}
		fmt.Fprintln(w)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tADDRESS\tINCARNATION\tEPOCH\tADMITTED\tHEALTHY\tKEYS\tNOTE")
	for _, s := range st.Members {
		if !s.Reachable {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tno\t-\t%s\n", s.ID, s.Addr, s.Note)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%x\t%d\t%s\t%s\t%d\t%s\n", s.ID, s.Addr, s.Incarnation, s.Epoch,
			yesNo(s.Admitted), yesNo(s.Healthy), s.Keys, s.Note)
	}
	tw.Flush()
	if st.Config == nil {
		return
	}
	verdict := "healthy"
	if !st.QuorumReady {
		verdict = "NOT healthy: reads and writes fail"
	}
	fmt.Fprintf(w, "\nQuorum: %s (serving: %d of P, need %d; %d of S, need %d)\n",
		verdict, st.PrepareUp, st.Config.PrepareQuorum, st.AcceptUp, st.Config.AcceptQuorum)
}

// describeRPCError condenses an Admin RPC error for the NOTE column.
func describeRPCError(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return "unreachable: " + err.Error()
	}
	switch st.Code() {
	case codes.Unavailable:
		// "connection error: desc = \"transport: ...: connect: connection refused\""
		msg := strings.TrimRight(st.Message(), `"`)
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return "unreachable: " + msg
	case codes.DeadlineExceeded:
		return "unreachable: no answer within --timeout"
	case codes.Unauthenticated, codes.PermissionDenied:
		return "refused: " + st.Message() + " (check --admin-token or --admin-token-file, and --cert/--key: status needs O=kshaka:admin)"
	}
	return fmt.Sprintf("error: %v: %s", st.Code(), st.Message())
}
