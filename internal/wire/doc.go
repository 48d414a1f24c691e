// Package wire converts between the generated wire types of the Kshaka
// protocol (proto/kshaka/v1) and the domain types: ballots and values
// (register), configurations and members (membership), and the requests
// of the acceptor's core (internal/acceptcore). It is the one place for
// those conversions; the generated package holds generated code only, and
// the acceptor, the proposer, the operator and the CLI all convert here.
//
// Conversions are total and keep what the wire says as it is: a nil
// message is the zero value (the zero ballot, the empty value, the
// configuration of epoch 0), nothing is validated here (callers that did
// not produce a configuration themselves run membership.Config.Validate),
// and where absent and zero differ for a rule the conversion says which it
// saw (acceptcore.AcceptItem.HasValue).
package wire
