package gc

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// ErrNotStable: GC runs only under a stable configuration (no membership
// change in progress).
var ErrNotStable = errors.New("tombstone GC needs a stable configuration")

// Controls break the procedure on purpose, for the negative controls of
// test/sim only (docs/design.md §8, §10). Production never sets them.
type Controls struct {
	// SkipFloorEpoch collects right after the writes, without installing
	// (and fencing) the epoch that raises the floors. The acceptors refuse
	// such a Collect (floors not installed) unless their core runs with
	// acceptcore.Options.IgnoreCollectFloors, which the simulation sets
	// with this control: "GC without the fence". A proposer of the old
	// epoch may then get a ballot below bg accepted on the absent key.
	SkipFloorEpoch bool
}

// Step is what the machine waits for.
type Step int

const (
	// StepWrite: run the GC write (keyproc.GCOp) on Action.Keys and feed
	// each result to Written.
	StepWrite Step = iota + 1
	// StepInstall: install Action.Config on every member of Action.Targets
	// (with Admin SetConfig, or through whoever owns configurations) and
	// feed each member's acknowledged epoch to Acked.
	StepInstall
	// StepCollect: send Admin Collect with Action.Items to every member of
	// Action.Targets and feed each member's verdicts to Collected.
	StepCollect
	// StepDone: the batch is over; Stats says what it did.
	StepDone
)

func (s Step) String() string {
	switch s {
	case StepWrite:
		return "write"
	case StepInstall:
		return "install"
	case StepCollect:
		return "collect"
	case StepDone:
		return "done"
	}
	return fmt.Sprintf("Step(%d)", int(s))
}

// Item is one key to collect: the ballot bg at which the GC write was
// accepted by every member, and the tombstone's version.
type Item struct {
	Key     []byte
	Ballot  register.Ballot
	Version uint64
}

// Verdict is one member's answer for one Item, as the acceptor core
// decides it (acceptcore.CollectVerdict).
type Verdict uint8

const (
	// Removed: the member removed the record.
	Removed Verdict = iota + 1
	// Absent: the member had no record.
	Absent
	// Changed: the member kept the record; it changed since the write.
	Changed
	// FloorsNotInstalled: the member kept the record; its configuration's
	// floors do not cover the item.
	FloorsNotInstalled
)

// Action is the machine's next step and its arguments.
type Action struct {
	Step Step
	// Keys are the candidates to write (StepWrite).
	Keys [][]byte
	// Config is the configuration to install (StepInstall).
	Config membership.Config
	// Targets are the members to install on or collect from.
	Targets []membership.Member
	// Items are the keys to collect (StepCollect).
	Items []Item
}

// WriteResult is the result of the GC write on one key.
type WriteResult struct {
	// OK: the identity change succeeded with every member of S.
	OK bool
	// Value and Ballot are the value it confirmed and its ballot (OK).
	Value  register.Value
	Ballot register.Ballot
}

// Stats count what a batch did.
type Stats struct {
	// Candidates is the number of keys the batch was given.
	Candidates int
	// Live counts candidates that were live again (not collected).
	Live int
	// Unreached counts candidates whose write missed a member (retried by
	// a later run).
	Unreached int
	// Collected counts keys removed from every member (or already absent).
	Collected int
	// Kept counts keys some member kept (Changed, FloorsNotInstalled, or no
	// answer); they stay tombstones.
	Kept int
	// Epoch is the floor epoch installed (0: none, nothing was written).
	Epoch uint64
}

// Machine runs the GC of one batch (see the package doc). Not safe for
// concurrent use.
type Machine struct {
	cfg      membership.Config
	next     membership.Config
	controls Controls
	step     Step
	keys     [][]byte
	written  map[string]WriteResult
	items    []Item
	acked    map[uint64]uint64
	verdicts map[uint64][]Verdict
	stats    Stats
}

// New starts the GC of keys, the candidate tombstones, under cfg, which
// must be stable. Keys are copied; duplicates are dropped.
func New(cfg membership.Config, keys [][]byte, c Controls) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.IsStable() {
		return nil, fmt.Errorf("%w: epoch %d is in the middle of a membership change: run GC once it is done", ErrNotStable, cfg.Epoch)
	}
	ks := make([][]byte, 0, len(keys))
	seen := map[string]bool{}
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			ks = append(ks, slices.Clone(k))
		}
	}
	m := &Machine{cfg: cfg.Clone(), controls: c, step: StepWrite, keys: ks, written: map[string]WriteResult{},
		acked: map[uint64]uint64{}, verdicts: map[uint64][]Verdict{}}
	m.stats.Candidates = len(ks)
	if len(ks) == 0 {
		m.step = StepDone
	}
	return m, nil
}

// Next returns the step to carry out now. It changes nothing; the step
// moves on when its results are all in.
func (m *Machine) Next() Action {
	switch m.step {
	case StepWrite:
		return Action{Step: StepWrite, Keys: m.pendingWrites()}
	case StepInstall:
		return Action{Step: StepInstall, Config: m.next.Clone(), Targets: m.pendingAcks()}
	case StepCollect:
		return Action{Step: StepCollect, Items: slices.Clone(m.items), Targets: m.pendingCollects()}
	}
	return Action{Step: StepDone}
}

// Stats says what the batch did so far.
func (m *Machine) Stats() Stats { return m.stats }

func (m *Machine) pendingWrites() [][]byte {
	var out [][]byte
	for _, k := range m.keys {
		if _, ok := m.written[string(k)]; !ok {
			out = append(out, k)
		}
	}
	return out
}

func (m *Machine) pendingAcks() []membership.Member {
	var out []membership.Member
	for _, mem := range m.next.Members {
		if m.acked[mem.Incarnation] < m.next.Epoch {
			out = append(out, mem)
		}
	}
	return out
}

func (m *Machine) pendingCollects() []membership.Member {
	var out []membership.Member
	for _, mem := range m.cfg.Members {
		if _, ok := m.verdicts[mem.Incarnation]; !ok {
			out = append(out, mem)
		}
	}
	return out
}

// Written feeds the result of the GC write of key. A key that is not
// pending is ignored.
func (m *Machine) Written(key []byte, r WriteResult) {
	if m.step != StepWrite || !slices.ContainsFunc(m.keys, func(k []byte) bool { return string(k) == string(key) }) {
		return
	}
	if _, dup := m.written[string(key)]; dup {
		return
	}
	m.written[string(key)] = r
	if len(m.written) == len(m.keys) {
		m.afterWrites()
	}
}

// afterWrites picks the keys to collect and the floor epoch.
func (m *Machine) afterWrites() {
	next := m.cfg.Clone()
	next.Epoch++
	for _, k := range m.keys {
		r := m.written[string(k)]
		switch {
		case !r.OK:
			m.stats.Unreached++
		case !r.Value.Tombstone || r.Value.Version == 0:
			m.stats.Live++
		default:
			m.items = append(m.items, Item{Key: k, Ballot: r.Ballot, Version: r.Value.Version})
			next.RemovedBallot = next.RemovedBallot.Max(r.Ballot)
			next.VersionFloor = max(next.VersionFloor, r.Value.Version)
		}
	}
	switch {
	case len(m.items) == 0:
		m.step = StepDone
	case m.controls.SkipFloorEpoch:
		m.step = StepCollect
	default:
		m.next = next
		m.stats.Epoch = next.Epoch
		m.step = StepInstall
	}
}

// Acked feeds the epoch a member acknowledged (its installed
// configuration's, after the install or on a later look). The floor epoch
// is fenced once every member acknowledged it or a later one; then the
// machine collects, under the new configuration.
func (m *Machine) Acked(incarnation, epoch uint64) {
	if m.step != StepInstall {
		return
	}
	if _, ok := m.next.Member(incarnation); !ok {
		return
	}
	m.acked[incarnation] = max(m.acked[incarnation], epoch)
	if len(m.pendingAcks()) == 0 {
		m.cfg = m.next.Clone()
		m.step = StepCollect
	}
}

// Collected feeds one member's verdicts, one per Item in order. A member
// that could not be reached may be fed nil: it keeps every record, which
// the stats count as kept.
func (m *Machine) Collected(incarnation uint64, verdicts []Verdict) {
	if m.step != StepCollect {
		return
	}
	if _, ok := m.cfg.Member(incarnation); !ok {
		return
	}
	if _, dup := m.verdicts[incarnation]; dup {
		return
	}
	if len(verdicts) != len(m.items) {
		verdicts = nil
	}
	m.verdicts[incarnation] = verdicts
	if len(m.pendingCollects()) > 0 {
		return
	}
	for i := range m.items {
		gone := true
		for _, vs := range m.verdicts {
			if vs == nil || (vs[i] != Removed && vs[i] != Absent) {
				gone = false
			}
		}
		if gone {
			m.stats.Collected++
		} else {
			m.stats.Kept++
		}
	}
	m.step = StepDone
}

// Config is the configuration the batch ends under: the floor epoch once it
// is fenced, the starting one before.
func (m *Machine) Config() membership.Config { return m.cfg.Clone() }
