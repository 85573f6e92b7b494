package ecs

import (
	"context"
	"fmt"

	"github.com/wharfhq/wharf/internal/store"
)

// pageSize checks maxResults against ECS's bounds and applies its default.
func pageSize(maxResults *int32, def, max int) (int, error) {
	if maxResults == nil {
		return def, nil
	}
	n := int(*maxResults)
	if n < 1 || n > max {
		return 0, invalidParameter("maxResults must be between 1 and %d.", max)
	}
	return n, nil
}

// start decodes nextToken for a listing described by scope; "" means the
// first page.
func (s *Service) start(scope, nextToken string) (string, error) {
	if nextToken == "" {
		return "", nil
	}
	pos, err := s.tokens.Decode(scope, nextToken)
	if err != nil {
		return "", invalidParameter("Invalid nextToken: it is malformed, expired, or was issued for a different request. Repeat the request without nextToken to start again.")
	}
	return pos, nil
}

// next returns the nextToken for a listing that stopped at key, or "" when
// nothing is left.
func (s *Service) next(scope, key string, more bool) string {
	if !more {
		return ""
	}
	return s.tokens.Encode(scope, key)
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
