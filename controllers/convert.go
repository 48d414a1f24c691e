package controllers

import (
	"fmt"
	"math"
	"strconv"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/change"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// FormatIncarnation renders an incarnation as status records it: 16
// lowercase hex digits ("" for 0).
func FormatIncarnation(inc uint64) string { return change.FormatIncarnation(inc) }

// ParseIncarnation parses FormatIncarnation's output; "" is 0.
func ParseIncarnation(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("while parsing incarnation %q: %w", s, err)
	}
	return v, nil
}

func mustParseIncarnation(s string) uint64 {
	v, _ := ParseIncarnation(s)
	return v
}

// ConfigFromStatus converts a recorded configuration; nil gives ok == false.
func ConfigFromStatus(c *kshakav1alpha1.Configuration) (membership.Config, bool) {
	if c == nil {
		return membership.Config{}, false
	}
	out := membership.Config{
		Epoch:         uint64(max(c.Epoch, 0)),
		PrepareQuorum: int(c.PrepareQuorum),
		AcceptQuorum:  int(c.AcceptQuorum),
	}
	for _, m := range c.Members {
		out.Members = append(out.Members, memberFromStatus(m))
	}
	out.VersionFloor = uint64(max(c.VersionFloor, 0))
	if b := c.RemovedBallot; b != nil {
		out.RemovedBallot.Counter = uint64(max(b.Counter, 0))
		out.RemovedBallot.Proposer, _ = strconv.ParseUint(b.Proposer, 10, 64)
	}
	return out, true
}

func memberFromStatus(m kshakav1alpha1.ConfigMember) membership.Member {
	return membership.Member{
		ID:          m.ID,
		Addr:        m.Address,
		Incarnation: mustParseIncarnation(m.Incarnation),
		Prepare:     m.Prepare,
		Accept:      m.Accept,
	}
}

// ConfigToStatus converts a configuration for recording in status.
func ConfigToStatus(c membership.Config) *kshakav1alpha1.Configuration {
	out := &kshakav1alpha1.Configuration{
		Epoch:         int64(c.Epoch),
		PrepareQuorum: int32(c.PrepareQuorum),
		AcceptQuorum:  int32(c.AcceptQuorum),
	}
	for _, m := range c.Members {
		out.Members = append(out.Members, memberToStatus(m))
	}
	out.VersionFloor = int64(min(c.VersionFloor, math.MaxInt64))
	if b := c.RemovedBallot; !b.IsZero() {
		out.RemovedBallot = &kshakav1alpha1.BallotRecord{Counter: int64(min(b.Counter, math.MaxInt64)), Proposer: strconv.FormatUint(b.Proposer, 10)}
	}
	return out
}

func memberToStatus(m membership.Member) kshakav1alpha1.ConfigMember {
	return kshakav1alpha1.ConfigMember{
		ID:          m.ID,
		Address:     m.Addr,
		Incarnation: FormatIncarnation(m.Incarnation),
		Prepare:     m.Prepare,
		Accept:      m.Accept,
	}
}
