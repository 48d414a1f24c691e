package keyproc

import (
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// ReadState is where a QuorumRead's try stands.
type ReadState int

const (
	// Reading: the try in flight needs more replies.
	Reading ReadState = iota
	// ReadDone: the value is known (Value).
	ReadDone
	// ReadFailed: the try's replies did not agree; Retry decides what next.
	ReadFailed
)

// ReplyRead is one member's answer to a read: ok with its accepted ballot
// and value, or !ok for an error or a refusal.
type ReplyRead struct {
	Attempt     uint64
	Incarnation uint64
	OK          bool
	Accepted    register.Ballot
	Value       register.Value
}

// QuorumRead is one quorum read of one key (round.Read) and the decision after
// each try. It keeps no time: the driver ends a try that did not decide
// within Config.RequestTimeout with Expire. Not safe for concurrent use.
type QuorumRead struct {
	cfg   Config
	conf  membership.Config
	r     *round.Read
	tries int
	state ReadState
	value register.Value
	// tally is the broken ReadPrepareQuorum rule's count of P members per
	// accepted ballot.
	tally map[register.Ballot]int
}

// NewQuorumRead starts a read under conf; Send is its first try's request.
func NewQuorumRead(cfg Config, conf membership.Config) *QuorumRead {
	rd := &QuorumRead{cfg: cfg}
	rd.start(conf)
	return rd
}

func (rd *QuorumRead) start(conf membership.Config) {
	rd.conf = conf
	rd.r = round.NewRead(&rd.conf)
	rd.tries++
	rd.state = Reading
	if rd.cfg.Broken.ReadPrepareQuorum {
		rd.tally = map[register.Ballot]int{}
	}
}

// Attempt numbers the try in flight (1 for the first); replies name it.
func (rd *QuorumRead) Attempt() uint64 { return uint64(rd.tries) }

// Send is the request of the try in flight: a read to every member of
// P ∪ S.
func (rd *QuorumRead) Send() Send {
	return Send{Kind: Read, Attempt: rd.Attempt(), Epoch: rd.conf.Epoch, To: rd.r.Targets()}
}

// Epoch is the epoch of the try in flight.
func (rd *QuorumRead) Epoch() uint64 { return rd.conf.Epoch }

// State is where the read stands; Value is the value read (ReadDone).
func (rd *QuorumRead) State() ReadState      { return rd.state }
func (rd *QuorumRead) Value() register.Value { return rd.value }

// Outcome is the outcome of the try in flight or just ended: Pending,
// Success or Failed (for metrics).
func (rd *QuorumRead) Outcome() round.Outcome {
	switch rd.state {
	case Reading:
		return round.Pending
	case ReadDone:
		return round.Success
	}
	return round.Failed
}

// OnRead feeds one member's reply; replies to other tries are ignored.
func (rd *QuorumRead) OnRead(r ReplyRead) {
	if rd.state != Reading || r.Attempt != rd.Attempt() {
		return
	}
	if r.OK && rd.broken(r) {
		rd.state, rd.value = ReadDone, r.Value
		return
	}
	rd.r.OnRead(r.Incarnation, r.OK, r.Accepted, r.Value)
	rd.decided()
}

// broken applies the broken read rules of the negative controls.
func (rd *QuorumRead) broken(r ReplyRead) bool {
	b := rd.cfg.Broken
	if b.ReadFirstReply {
		return true
	}
	if b.ReadPrepareQuorum {
		if m, ok := rd.conf.Member(r.Incarnation); ok && m.Prepare {
			rd.tally[r.Accepted]++
			return rd.tally[r.Accepted] >= rd.conf.PrepareQuorum
		}
	}
	return false
}

// Expire ends the try in flight.
func (rd *QuorumRead) Expire() {
	if rd.state != Reading {
		return
	}
	rd.r.Expire()
	rd.decided()
}

// Retry decides, after a failed try, given the newest configuration conf:
// true starts another try under conf (its request is Send), when its epoch
// is newer and retries are left (Config.MaxRetries); false means the read
// falls back to an identity change of the key through its Machine (docs/design.md
// §2.5).
func (rd *QuorumRead) Retry(conf membership.Config) bool {
	if rd.state != ReadFailed || conf.Epoch <= rd.conf.Epoch || rd.tries > rd.cfg.MaxRetries {
		return false
	}
	rd.start(conf)
	return true
}

func (rd *QuorumRead) decided() {
	switch rd.r.Outcome() {
	case round.Success:
		rd.state, rd.value = ReadDone, rd.r.Value()
	case round.Failed:
		rd.state = ReadFailed
	}
}
