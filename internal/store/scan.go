package store

import (
	"context"
	"fmt"
)

// Scan walks the keys under prefix after the key after, collecting at most
// limit items that match accepts, and reports the key of the last collected
// item and whether more matching items follow.
func Scan[T any](ctx context.Context, st *Store, prefix, after string, limit int, match func(kv KV) (T, bool, error)) (items []T, last string, more bool, err error) {
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
