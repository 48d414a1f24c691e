package register

// State is one acceptor's record for one key. The acceptor persists the whole
// State as one record, with Sync, before it answers a request that changed it.
type State struct {
	// Promise is the highest ballot this acceptor promised not to go below,
	// from a prepare or from the 1RTT "next" of an accept.
	Promise Ballot
	// Accepted is the ballot of the last accepted value; zero if none.
	Accepted Ballot
	// Value is the last accepted value.
	Value Value
}

// Highest is the highest ballot the acceptor has seen for this key. Conflict
// replies carry it so the proposer can fast-forward (docs/design.md §2.1).
func (s State) Highest() Ballot { return s.Promise.Max(s.Accepted) }

// Prepare applies a prepare with ballot b (docs/design.md §2.2). It conflicts when
// b <= Promise or b <= Accepted; then ok is false and s is returned
// unchanged. Otherwise the new state promises b, and the caller must persist
// it before replying with (Accepted, Value).
func (s State) Prepare(b Ballot) (next State, ok bool) {
	if !b.Valid() || b.Compare(s.Promise) <= 0 || b.Compare(s.Accepted) <= 0 {
		return s, false
	}
	s.Promise = b
	return s, true
}

// Accept applies an accept of v at ballot b (docs/design.md §2.2). It conflicts when
// b < Promise or b <= Accepted. When next is not zero it is the proposer's
// one-round-trip promise (docs/design.md §2.4) and must be higher than b; the new
// state then promises next as if a prepare with next had arrived.
func (s State) Accept(b Ballot, v Value, next Ballot) (State, bool) {
	if !b.Valid() || b.Less(s.Promise) || b.Compare(s.Accepted) <= 0 {
		return s, false
	}
	if !next.IsZero() && (!next.Valid() || next.Compare(b) <= 0) {
		return s, false
	}
	s.Accepted = b
	s.Value = v
	s.Promise = s.Promise.Max(b)
	if !next.IsZero() {
		s.Promise = s.Promise.Max(next)
	}
	return s, true
}

// AtLeast returns s with its promise raised to floor when floor is higher.
// An acceptor that keeps promises in memory between syncs applies, after a
// restart, the durable floor it recorded before it promised anything
// without a sync (see package acceptor): every ballot it may have promised
// and forgotten is lower than floor, so refusing everything up to floor
// keeps those promises.
func (s State) AtLeast(floor Ballot) State {
	s.Promise = s.Promise.Max(floor)
	return s
}
