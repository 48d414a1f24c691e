package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kshaka-io/kshaka/membership"
)

// observed is what one acceptor started by `kshaka local` reported.
type observed struct {
	ID          string
	Addr        string
	Dir         string // its data directory, for messages
	Incarnation uint64
	Config      membership.Config // epoch 0: none installed
}

// bootstrapPlan is what `kshaka local` must install, and where.
type bootstrapPlan struct {
	Config membership.Config
	// Fresh is true when no acceptor had a configuration: Config is new.
	Fresh bool
	// InstallOn lists the indexes of acceptors that lack Config (all when
	// Fresh; otherwise those whose first start was interrupted).
	InstallOn []int
}

// errDataMismatch is wrapped by every refusal of planBootstrap.
var errDataMismatch = errors.New("the data directory does not match this cluster")

// planBootstrap decides, from what the acceptors report, whether to install
// a first configuration, reuse the installed one, or refuse. It refuses
// whenever reusing the data would need a membership change (docs/design.md §4–§5):
// an acceptor that lost its storage must not count again under its old
// identity, and replacing it is the operator's job.
func planBootstrap(obs []observed, dataDir string) (bootstrapPlan, error) {
	var cur membership.Config
	for _, o := range obs {
		if o.Config.Epoch > cur.Epoch {
			cur = o.Config
		}
	}
	if cur.Epoch == 0 {
		members := make([]membership.Member, len(obs))
		plan := bootstrapPlan{Fresh: true}
		for i, o := range obs {
			members[i] = membership.Member{ID: o.ID, Addr: o.Addr, Incarnation: o.Incarnation}
			plan.InstallOn = append(plan.InstallOn, i)
		}
		plan.Config = membership.Stable(1, members...)
		return plan, plan.Config.Validate()
	}

	fresh := fmt.Sprintf("To start over with an empty cluster, stop kshaka local and delete the whole directory:\n  rm -rf %s", dataDir)
	var problems []string
	for _, o := range obs {
		if o.Config.Epoch != 0 && !configEqual(o.Config, cur) {
			problems = append(problems, fmt.Sprintf("%s holds configuration %v, others hold %v", o.ID, o.Config, cur))
		}
	}
	if len(problems) > 0 {
		return bootstrapPlan{}, fmt.Errorf("%w: the acceptors disagree on their configuration:\n  %s\n"+
			"kshaka local only installs a first configuration; something else changed membership here.\n%s",
			errDataMismatch, strings.Join(problems, "\n  "), fresh)
	}
	if !cur.IsStable() || len(cur.Members) != len(obs) {
		return bootstrapPlan{}, fmt.Errorf("%w: %s holds a cluster with configuration %v (%d members), "+
			"but %d acceptors were asked for; run with --acceptors %d. kshaka local does not change membership.\n%s",
			errDataMismatch, dataDir, cur, len(cur.Members), len(obs), len(cur.Members), fresh)
	}

	plan := bootstrapPlan{Config: cur}
	var lost []string
	for i, o := range obs {
		m, ok := cur.MemberByID(o.ID)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is not a member of %v", o.ID, cur))
		case m.Incarnation != o.Incarnation:
			lost = append(lost, fmt.Sprintf("%s (%s): configuration epoch %d lists incarnation %x, the acceptor now has %x",
				o.ID, o.Dir, cur.Epoch, m.Incarnation, o.Incarnation))
		case m.Addr != o.Addr:
			problems = append(problems, fmt.Sprintf("%s is at %s in configuration epoch %d but was started at %s; "+
				"use the --base-port the directory was created with", o.ID, m.Addr, cur.Epoch, o.Addr))
		case o.Config.Epoch == 0:
			plan.InstallOn = append(plan.InstallOn, i)
		}
	}
	if len(lost) > 0 {
		return bootstrapPlan{}, fmt.Errorf("%w: acceptor storage was lost or replaced:\n  %s\n"+
			"An acceptor whose data directory was deleted comes back empty, with a new incarnation. It lost the\n"+
			"promises it made, so it must never count again under its old identity (docs/design.md §4): replacing it is\n"+
			"a membership change (remove the old member, add the new one, rescanning every key), which the\n"+
			"operator performs and kshaka local does not.\n%s",
			errDataMismatch, strings.Join(lost, "\n  "), fresh)
	}
	if len(problems) > 0 {
		return bootstrapPlan{}, fmt.Errorf("%w:\n  %s\n%s", errDataMismatch, strings.Join(problems, "\n  "), fresh)
	}
	return plan, nil
}

func configEqual(a, b membership.Config) bool { return a.Equal(b) }
