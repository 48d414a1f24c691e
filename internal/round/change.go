package round

import "github.com/kshaka-io/kshaka/register"

// Change computes a register's next value from its current one. Returning
// an error rejects the change: the value stays as it is, and the error is
// reported to the caller only after the unchanged value was accepted by a
// quorum (docs/design.md §2.3, a failed CAS still runs the accept).
type Change func(cur register.Value) (register.Value, error)

// Applied is the result of one change of a combined round.
type Applied struct {
	// Value is the register's value right after this change (or the
	// unchanged value when Err is set).
	Value register.Value
	Err   error
}

// ApplyAll applies changes in order to cur, each to the result of the one
// before (same-key combining, docs/design.md §2.6). It returns the value to propose
// and each change's own result.
func ApplyAll(cur register.Value, changes []Change) (register.Value, []Applied) {
	out := make([]Applied, len(changes))
	for i, ch := range changes {
		next, err := ch(cur)
		if err != nil {
			out[i] = Applied{Value: cur, Err: err}
			continue
		}
		cur = next
		out[i] = Applied{Value: cur}
	}
	return cur, out
}

// Identity leaves the value as it is; reads that fall back to a full round
// and the rescan of a membership change propose it.
func Identity(cur register.Value) (register.Value, error) { return cur, nil }
