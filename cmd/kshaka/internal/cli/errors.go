package cli

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/backup"
	"github.com/kshaka-io/kshaka/proposer"
)

// Exit codes of the kshaka command. They are part of its interface: scripts
// branch on them.
const (
	// ExitOK: the command did what it was asked.
	ExitOK = 0
	// ExitError: any failure not covered by a more specific code.
	ExitError = 1
	// ExitUsage: bad command line (unknown command or flag, wrong arguments).
	ExitUsage = 2
	// ExitNotFound: the key does not exist (or was deleted).
	ExitNotFound = 3
	// ExitVersionMismatch: a compare-and-swap found another version.
	ExitVersionMismatch = 4
	// ExitUnknownOutcome: a write may or may not have taken effect.
	ExitUnknownOutcome = 5
	// ExitUnreachable: no quorum of acceptors answered (or none at all), or
	// status found no healthy quorum.
	ExitUnreachable = 6
	// ExitAccess: the TLS handshake with the acceptors failed, or they
	// refused the client certificate or its role.
	ExitAccess = 7
	// ExitCorrupt: a backup file is corrupt, truncated or not a backup;
	// restore wrote nothing.
	ExitCorrupt = 8
)

const exitCodesHelp = `Exit codes:
  0  success
  1  error not covered below
  2  usage error (unknown command or flag, wrong arguments)
  3  key not found
  4  version mismatch: cas found another version (the current one is printed);
     restore found a key that already holds another value
  5  unknown outcome: the write may or may not have happened; re-read the key
  6  acceptors unreachable or no quorum (status: no healthy quorum)
  7  access refused: the TLS handshake failed, or the acceptors refused the
     client certificate or its role
  8  backup file corrupt, truncated or not a backup (restore wrote nothing)`

// exitError carries an exit code and, optionally, advice printed after the
// error message.
type exitError struct {
	code   int
	err    error
	advice string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErrorf reports a bad command line (ExitUsage).
func usageErrorf(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

// withCode attaches an exit code to err.
func withCode(code int, err error) error {
	return &exitError{code: code, err: err}
}

// classify maps an error of the proposer library or of an admin RPC to the
// exit code and advice the user sees. The order matters: an unknown outcome
// must never be reported as a plain timeout.
func classify(err error) *exitError {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee
	}
	var vm *proposer.VersionMismatchError
	switch {
	case errors.Is(err, proposer.ErrUnknownOutcome):
		return &exitError{code: ExitUnknownOutcome, err: err, advice: "The write may or may not have happened: an accept was sent but no quorum confirmed it,\n" +
			"and it may still take effect. Re-read the key ('kshaka get KEY -o json') before retrying,\n" +
			"and retry with 'kshaka cas' against the version you read so the change cannot apply twice."}
	case errors.As(err, &vm):
		advice := fmt.Sprintf("current version: %d", vm.Current.Version)
		if !vm.Exists {
			advice += " (the key does not exist; cas with version 0 creates it)"
		}
		return &exitError{code: ExitVersionMismatch, err: err, advice: advice}
	case errors.Is(err, proposer.ErrVersionMismatch):
		return &exitError{code: ExitVersionMismatch, err: err}
	case errors.Is(err, backup.ErrCorrupt):
		return &exitError{code: ExitCorrupt, err: err}
	case errors.Is(err, proposer.ErrRestoreConflict):
		return &exitError{code: ExitVersionMismatch, err: err}
	case errors.Is(err, proposer.ErrInvalidArgument):
		return &exitError{code: ExitUsage, err: err}
	case errors.Is(err, proposer.ErrNotFound):
		return &exitError{code: ExitNotFound, err: err}
	case errors.Is(err, proposer.ErrAccess):
		return &exitError{code: ExitAccess, err: err, advice: "Check --cacert (the CA bundle that signed the acceptors' certificates), --cert and --key\n" +
			"(a client certificate from the cluster's CA with O=kshaka:client, or O=kshaka:admin), and --tls-server-name.\n" +
			"Against 'kshaka local --tls' use the files it printed, under DIR/tls."}
	case errors.Is(err, proposer.ErrNoQuorum), isUnreachable(err):
		return &exitError{code: ExitUnreachable, err: err, advice: "Check --endpoints (or KSHAKA_ENDPOINTS), that the acceptors are running ('kshaka status'),\n" +
			"and the TLS and token flags."}
	}
	return &exitError{code: ExitError, err: err}
}

// isUnreachable reports errors that mean "nobody answered in time".
func isUnreachable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		}
	}
	return false
}
