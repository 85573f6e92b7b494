package cloudmap

import (
	"context"
	"fmt"

	"github.com/wharfhq/wharf/internal/store"
)

// defaultPage is the page size of every Cloud Map listing when MaxResults
// is not given.
const defaultPage = 100

// pageSize applies Cloud Map's default to maxResults; the model's bounds
// are checked by the generated validation, and in-process callers' zero
// means the default.
func pageSize(maxResults int32) int {
	if maxResults <= 0 {
		return defaultPage
	}
	return int(maxResults)
}

// start decodes NextToken for a listing described by scope; "" means the
// first page.
func (s *Service) start(scope, nextToken string) (string, error) {
	if nextToken == "" {
		return "", nil
	}
	pos, err := s.tokens.Decode(scope, nextToken)
	if err != nil {
		return "", invalidInput("Invalid NextToken: it is malformed, expired, or was issued for a different request. Repeat the request without NextToken to start again.")
	}
	return pos, nil
}

// next returns the NextToken for a listing that stopped at pos, or "" when
// nothing is left.
func (s *Service) next(scope, pos string, more bool) string {
	if !more {
		return ""
	}
	return s.tokens.Encode(scope, pos)
}

// scan walks the keys under prefix after the key after, collecting at most
// limit items that match accepts, and reports the key of the last collected
// item and whether more matching items follow.
func scan[T any](ctx context.Context, st *store.Store, prefix, after string, limit int, match func(kv store.KV) (T, bool, error)) (items []T, last string, more bool, err error) {
	chunk := max(limit+1, 100)
	for {
		kvs, hasMore, err := st.Page(ctx, prefix, after, chunk)
		if err != nil {
			return nil, "", false, err
		}
		for _, kv := range kvs {
			item, ok, err := match(kv)
			if err != nil {
				return nil, "", false, fmt.Errorf("read %s: %w", kv.Key, err)
			}
			if !ok {
				continue
			}
			if len(items) == limit {
				return items, last, true, nil
			}
			items = append(items, item)
			last = kv.Key
		}
		if !hasMore || len(kvs) == 0 {
			return items, last, false, nil
		}
		after = kvs[len(kvs)-1].Key
	}
}
