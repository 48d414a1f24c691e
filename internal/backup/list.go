package backup

import (
	"context"
	"errors"
	"io"

	kshakav1 "github.com/kshaka-io/kshaka/proto/kshaka/v1"
)

// ListKeysPages is the PageFunc of an acceptor's Admin service: one
// ListKeys call per page (a short call, so the acceptor holds no iterator
// between pages). It needs the admin role.
func ListKeysPages(admin kshakav1.AdminClient) PageFunc {
	return func(ctx context.Context, after []byte, limit int) ([][]byte, error) {
		stream, err := admin.ListKeys(ctx, &kshakav1.ListKeysRequest{StartAfter: after, Limit: uint64(limit), PageSize: uint32(limit)})
		if err != nil {
			return nil, err
		}
		var keys [][]byte
		for {
			resp, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return keys, nil
			}
			if err != nil {
				return nil, err
			}
			keys = append(keys, resp.GetKeys()...)
		}
	}
}
