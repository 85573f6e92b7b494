package store

import (
	"context"
	"strings"
)

// Regions holds state in regions: a request signed for a region sees that
// region's keys only. The regions that hold any state are recorded under
// regions/, so that background work (sweepers, health checks) visits them.

const regionsPrefix = "regions/"

// MarkRegion records, in tx, that region holds state.
func MarkRegion(tx *Tx, region string) error { return tx.Put(regionsPrefix+region, true) }

// Regions lists the regions that hold state.
func (s *Store) Regions(ctx context.Context) ([]string, error) {
	kvs, err := s.List(ctx, regionsPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = strings.TrimPrefix(kv.Key, regionsPrefix)
	}
	return out, nil
}
