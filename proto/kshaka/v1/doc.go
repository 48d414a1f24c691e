// Package kshakav1 is the generated Go code of the Kshaka wire protocol,
// kshaka.proto, which documents the contract. Regenerate with `make generate`.
package kshakav1
