package change

import (
	"slices"
	"time"

	"github.com/kshaka-io/kshaka/membership"
)

// Kind is the kind of a transition.
type Kind string

// Kinds of transitions. The values are the ones the KshakaCluster API
// records.
const (
	// Bootstrap installs the first configuration.
	Bootstrap Kind = "Bootstrap"
	// Add adds one member (docs/design.md §5 "Add x").
	Add Kind = "Add"
	// Remove removes one member (docs/design.md §5 "Remove x").
	Remove Kind = "Remove"
	// Readdress installs the same membership with updated addresses.
	Readdress Kind = "Readdress"
)

// Reason says why a transition was started.
type Reason string

// Reasons of a transition.
const (
	ReasonBootstrap      Reason = "Bootstrap"
	ReasonScaleUp        Reason = "ScaleUp"
	ReasonScaleDown      Reason = "ScaleDown"
	ReasonReplace        Reason = "Replace"
	ReasonAddressChanged Reason = "AddressChanged"
)

// Step is the step a transition is at. A step is recorded before it is
// carried out and every step re-checks the observation, so repeating one
// is harmless.
type Step string

// Steps of a transition, in the order an add or a remove takes them.
const (
	// StepStartMember: waiting for the new member's slot to report an
	// empty acceptor's incarnation.
	StepStartMember Step = "StartMember"
	// StepInstallJoint: installing the joint configuration (epoch e+1)
	// and waiting for its fence.
	StepInstallJoint Step = "InstallJoint"
	// StepRescan: running the identity change on every key under the
	// fenced joint configuration, after Transition.Cursor.
	StepRescan Step = "Rescan"
	// StepInstallFinal: installing the final configuration and waiting for
	// its fence.
	StepInstallFinal Step = "InstallFinal"
	// StepStopMember: the removed member is retired; waiting for its slot's
	// process to be gone.
	StepStopMember Step = "StopMember"
	// StepDeleteStorage: deleting the removed member's storage.
	StepDeleteStorage Step = "DeleteStorage"
)

// Ack is the record of the highest epoch one incarnation acknowledged, as
// observed (docs/design.md §4 "Rolled-back disks").
type Ack struct {
	Incarnation uint64
	Epoch       uint64
}

// Transition is the membership change in progress.
type Transition struct {
	Kind   Kind
	Reason Reason
	Step   Step
	// Member is the member being added or removed; its ID is the slot. Its
	// incarnation is 0 while a new member has not reported one. Zero for a
	// bootstrap or a readdress.
	Member membership.Member
	// From is the stable configuration the change started from; nil for a
	// bootstrap.
	From *membership.Config
	// Cursor is the last key whose rescan is complete; the rescan resumes
	// after it. Nil: from the first key.
	Cursor []byte
	// Rescanned counts the keys rescanned so far (each one touched).
	Rescanned int64
	// StartedAt is Observation.Now when the transition was started.
	StartedAt time.Time
}

// Intent is the machine's durable state: what the operator records (in the
// KshakaCluster's status) before it acts, so that a restarted operator
// resumes the recorded step. It is all the machine remembers between two
// decisions.
type Intent struct {
	// Config is the configuration installed last or being installed; nil
	// before the bootstrap.
	Config *membership.Config
	// Transition is the change in progress; nil when none.
	Transition *Transition
	// Retired are the incarnations whose storage is gone, in the order
	// they were retired. A retired incarnation never counts again.
	Retired []uint64
	// Acks is, by slot, the highest epoch the incarnation at that slot
	// acknowledged. It is kept while the slot cannot be reached and never
	// lowered for the same incarnation.
	Acks map[string]Ack
}

// Clone returns a deep copy of in.
func (in Intent) Clone() Intent {
	out := Intent{Retired: slices.Clone(in.Retired)}
	if in.Config != nil {
		c := in.Config.Clone()
		out.Config = &c
	}
	if tr := in.Transition; tr != nil {
		t := *tr
		if tr.From != nil {
			f := tr.From.Clone()
			t.From = &f
		}
		t.Cursor = slices.Clone(tr.Cursor)
		out.Transition = &t
	}
	if in.Acks != nil {
		out.Acks = make(map[string]Ack, len(in.Acks))
		for k, v := range in.Acks {
			out.Acks[k] = v
		}
	}
	return out
}

// Slot is what one observation saw at one slot: the place a member's
// acceptor runs with its storage (a pod with its volume claim, a simulated
// node). Slots are named by the member IDs they hold.
type Slot struct {
	// Exists: the slot's process exists, possibly stopping.
	Exists bool
	// Running: it exists and is not stopping.
	Running bool
	// HasStorage: the slot's storage exists and is not being deleted.
	HasStorage bool
	// Addr is where the acceptor is dialled; "" while unknown.
	Addr string
	// Reachable: the acceptor is running and answered (its status).
	Reachable bool
	// Why says, as a sentence naming the slot, why it is not reachable.
	Why string
	// Incarnation, Epoch, Admitted, Healthy and Reason are the acceptor's
	// answer: its storage identity, the epoch of its configuration,
	// whether that configuration lists it, and its health.
	Incarnation uint64
	Epoch       uint64
	Admitted    bool
	Healthy     bool
	Reason      string
}

// Observation is everything one decision looks at, gathered once.
type Observation struct {
	// Slots are the slots members may occupy, in order of preference: the
	// bootstrap takes the first Size, an add takes the first one that holds
	// no member, and shrinking removes the member whose slot comes last.
	Slots []string
	// Size is the desired number of members.
	Size int
	// Seen is what was observed at each slot, by slot name. A slot absent
	// from Seen has nothing at it.
	Seen map[string]Slot
	// Asserted are incarnations a person asserted will never return (the
	// retire annotation): they are retired.
	Asserted []uint64
	// Paused freezes every change; retirements are still recorded.
	Paused bool
	// Now is the time of the observation (Transition.StartedAt).
	Now time.Time
}

// ActionKind is the kind of the one action a Decision carries.
type ActionKind string

// Actions.
const (
	// None: nothing to do but record the intent.
	None ActionKind = ""
	// Install: install Config on each of Targets, in order, stopping at
	// the first failure, after checking each target reports the expected
	// incarnation.
	Install ActionKind = "Install"
	// Rescan: touch the keys after Cursor, listed from every one of
	// Targets, under Config (the fenced joint configuration), with a
	// proposer that bootstraps from Endpoints; report progress with
	// Machine.Rescanned.
	Rescan ActionKind = "Rescan"
	// Start: start the process of Slot, with empty storage (a new member,
	// or the first ones of a bootstrap).
	Start ActionKind = "Start"
	// Recycle: delete the storage and then the process of Slot, whose
	// acceptor answers with the retired Incarnation, so that it comes back
	// empty with a new incarnation.
	Recycle ActionKind = "Recycle"
	// Stop: stop and remove the process of Slot, whose member was removed
	// and retired.
	Stop ActionKind = "Stop"
	// DeleteStorage: delete the storage of Slot, whose process is gone.
	DeleteStorage ActionKind = "DeleteStorage"
)

// Target is an acceptor an action talks to.
type Target struct {
	// Slot names it.
	Slot string
	// Addr is where it is dialled now (it may differ from the address in
	// the configuration while a readdress is installed).
	Addr string
	// Incarnation is the expected incarnation.
	Incarnation uint64
}

// Action is the one thing to do after the decision's intent is recorded.
type Action struct {
	Kind   ActionKind
	Config membership.Config
	// Targets: Install: where to install, in order; Rescan: the members to
	// list keys from.
	Targets []Target
	// Endpoints are where the rescan's proposer bootstraps.
	Endpoints []string
	// Cursor: the rescan resumes after this key.
	Cursor []byte
	// SkipAgreeing, when positive, lets the rescan skip a key whose
	// accepted ballot agrees on this many members of Config's accept set.
	// Only the negative controls Controls.RescanSkip and
	// Controls.SkipBelowAcceptQuorum set it; the rule is unsafe
	// (docs/design.md) and a production rescan refuses it.
	SkipAgreeing int
	// Slot is the slot of a Start, Recycle, Stop or DeleteStorage.
	Slot string
	// Incarnation is the retired incarnation a Recycle's slot answers with.
	Incarnation uint64
}

// Event says what a decision did, for the record (Kubernetes Events).
type Event struct {
	Warning bool
	Reason  string
	Message string
}

// Pace says when to decide again.
type Pace int

const (
	// PaceIdle: nothing is in progress; look again now and then.
	PaceIdle Pace = iota
	// PaceWait: waiting for something outside the machine (a member, a
	// fence); poll.
	PaceWait
	// PaceNow: a step was recorded or an action is to be taken; look again
	// promptly.
	PaceNow
)

// Condition reasons a decision reports.
const (
	ReasonBlocked           = "Blocked"
	ReasonMemberNotServing  = "MemberNotServing"
	ReasonMemberUnreachable = "MemberUnreachable"
	ReasonDiskLost          = "DiskLost"
	// ReasonVolumeRolledBack: a member's acceptor reports its incarnation
	// with a lower epoch than it acknowledged before (docs/design.md §4).
	ReasonVolumeRolledBack = "VolumeRolledBack"
)

// Event reasons, one per membership step.
const (
	EventBootstrap      = "Bootstrap"
	EventBootstrapped   = "Bootstrapped"
	EventChangeStarted  = "MembershipChangeStarted"
	EventJointInstalled = "JointConfigurationFenced"
	EventRescanned      = "RescanComplete"
	EventFinalInstalled = "FinalConfigurationFenced"
	EventMemberAdded    = "MemberAdded"
	EventMemberRemoved  = "MemberRemoved"
	EventMemberRetired  = "MemberRetired"
	EventReaddressed    = "MembersReaddressed"
	EventRecycle        = "RecycleMember"
	EventDeleteStorage  = "DeleteVolume"
	EventCancelled      = "MembershipChangeCancelled"
)

// Decision is the machine's answer to one observation: the intent to
// record before acting, at most one action, what happened, and when to
// look again.
type Decision struct {
	// Intent is the new durable state. It must be recorded before the
	// action is taken.
	Intent Intent
	Action Action
	Events []Event
	// Fenced is the epoch this decision found fenced and moved past (0:
	// none): from now on nothing of an older epoch may be accepted
	// anywhere (docs/design.md §3).
	Fenced uint64
	// Blocked, when set, explains why the next step cannot be taken, with
	// the condition reason BlockedReason.
	Blocked, BlockedReason string
	// Waiting, when set, says what the machine waits for.
	Waiting string
	// Kept, when set, says why a retired member's storage is kept.
	Kept string
	// RolledBack explains each member whose storage was found rolled back.
	RolledBack []string
	// Idle: the cluster is stable at the desired size and nothing in the
	// membership needs doing (other work, like a rolling update, may go
	// ahead).
	Idle bool
	Pace Pace

	view View
}

// View is the decision's view of the members: the observation with the
// decision's retirements applied.
func (d Decision) View() View { return d.view }
