package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// SharedKey returns the random 32-byte key stored at key, creating it on
// first use, so that every server of a cluster signs with the same one.
func (s *Store) SharedKey(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.Update(ctx, func(tx *Tx) error {
		var hexKey string
		if ok, err := tx.Get(key, &hexKey); err != nil || ok {
			out, _ = hex.DecodeString(hexKey)
			return err
		}
		b := make([]byte, 32)
		rand.Read(b)
		out = b
		return tx.Put(key, hex.EncodeToString(b))
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", key, err)
	}
	return out, nil
}
