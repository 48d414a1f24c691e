package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kshaka-io/kshaka/internal/backup"
	"github.com/kshaka-io/kshaka/proposer"
)

// TestClassify checks the mapping from the proposer's errors to exit codes,
// with the library's own error values. An unknown outcome caused by a
// timeout must stay an unknown outcome, never become "unreachable".
func TestClassify(t *testing.T) {
	unknown := &proposer.UnknownOutcomeError{Key: []byte("k"), Intended: proposer.Value{Version: 3}, Cause: context.DeadlineExceeded}
	mismatch := &proposer.VersionMismatchError{Key: []byte("k"), Expected: 1, Current: proposer.Value{Version: 7}, Exists: true}
	tests := []struct {
		err    error
		code   int
		advice string
	}{
		{fmt.Errorf("put: %w", unknown), ExitUnknownOutcome, "may or may not have happened"},
		{fmt.Errorf("cas: %w", mismatch), ExitVersionMismatch, "current version: 7"},
		{&proposer.VersionMismatchError{Key: []byte("k"), Expected: 1}, ExitVersionMismatch, "does not exist"},
		{fmt.Errorf("get: %w", proposer.ErrNotFound), ExitNotFound, ""},
		{fmt.Errorf("get: %w", proposer.ErrNoQuorum), ExitUnreachable, "--endpoints"},
		{context.DeadlineExceeded, ExitUnreachable, ""},
		{status.Error(codes.Unavailable, "connection refused"), ExitUnreachable, ""},
		{fmt.Errorf("put: %w", proposer.ErrInvalidArgument), ExitUsage, ""},
		{proposer.ErrClosed, ExitError, ""},
		{errors.New("disk on fire"), ExitError, ""},
		{usageErrorf("bad"), ExitUsage, ""},
		{fmt.Errorf("restore: %w", &backup.CorruptError{Offset: 9, Reason: "truncated"}), ExitCorrupt, ""},
		{fmt.Errorf("restore: %w", &proposer.RestoreConflictError{Key: []byte("k")}), ExitVersionMismatch, ""},
	}
	for _, tt := range tests {
		got := classify(tt.err)
		if got.code != tt.code || !strings.Contains(got.advice, tt.advice) {
			t.Errorf("classify(%v) = code %d advice %q; want %d with %q", tt.err, got.code, got.advice, tt.code, tt.advice)
		}
	}
}
