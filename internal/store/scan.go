package store

import (
	"context"
	"encoding/json"
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

// Sweep visits every key under prefix and removes those drop says to, each
// in a transaction of its own that reads the key again, so that several
// servers may sweep at once: a key changed meanwhile is looked at afresh,
// and one removed meanwhile is skipped.
func (s *Store) Sweep(ctx context.Context, prefix string, drop func(tx *Tx, kv KV) (bool, error)) error {
	kvs, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		err := s.Update(ctx, func(tx *Tx) error {
			var raw json.RawMessage
			if ok, err := tx.Get(kv.Key, &raw); err != nil || !ok {
				return err
			}
			gone, err := drop(tx, KV{Key: kv.Key, Value: raw})
			if err != nil || !gone {
				return err
			}
			tx.Delete(kv.Key)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
