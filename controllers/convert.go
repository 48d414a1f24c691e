package controllers

import (
	"fmt"
	"strconv"

	"github.com/kshaka-io/kshaka/membership"
	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"

	kshakav1alpha1 "github.com/kshaka-io/kshaka/api/v1alpha1"
)

// FormatIncarnation renders an incarnation as status records it: 16
// lowercase hex digits ("" for 0).
func FormatIncarnation(inc uint64) string {
	if inc == 0 {
		return ""
	}
	return fmt.Sprintf("%016x", inc)
}

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

// ConfigToProto converts a configuration to the wire type.
func ConfigToProto(c membership.Config) *kshakav1.Config {
	pc := &kshakav1.Config{
		Epoch:         c.Epoch,
		PrepareQuorum: uint32(max(c.PrepareQuorum, 0)),
		AcceptQuorum:  uint32(max(c.AcceptQuorum, 0)),
	}
	for _, m := range c.Members {
		pc.Members = append(pc.Members, &kshakav1.Member{
			Id: m.ID, Addr: m.Addr, Incarnation: m.Incarnation, Prepare: m.Prepare, Accept: m.Accept,
		})
	}
	return pc
}

// ConfigFromProto converts a configuration from the wire type.
func ConfigFromProto(pc *kshakav1.Config) membership.Config {
	c := membership.Config{
		Epoch:         pc.GetEpoch(),
		PrepareQuorum: int(pc.GetPrepareQuorum()),
		AcceptQuorum:  int(pc.GetAcceptQuorum()),
	}
	for _, m := range pc.GetMembers() {
		c.Members = append(c.Members, membership.Member{
			ID: m.GetId(), Addr: m.GetAddr(), Incarnation: m.GetIncarnation(), Prepare: m.GetPrepare(), Accept: m.GetAccept(),
		})
	}
	return c
}
