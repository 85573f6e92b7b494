package awsproto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// ErrBadToken is returned for a pagination token that is malformed, was
// issued for a different request, or has expired.
var ErrBadToken = errors.New("invalid pagination token")

// Tokens issues and checks opaque pagination tokens. A token carries the
// position to resume from, is bound to the request it continues (the
// operation and its filters) and expires after a day, as AWS's do.
type Tokens struct {
	key []byte
	ttl time.Duration
	now func() time.Time
}

// NewTokens returns a token issuer keyed by key; servers sharing a store
// must share the key.
func NewTokens(key []byte) *Tokens {
	return &Tokens{key: key, ttl: 24 * time.Hour, now: time.Now}
}

type tokenBody struct {
	Pos   string `json:"p"`
	Scope string `json:"s"` // hash of the request's scope
	At    int64  `json:"t"`
}

func (t *Tokens) scopeHash(scope string) string {
	h := sha256.Sum256([]byte(scope))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// Encode returns a token resuming at pos for the request described by scope.
func (t *Tokens) Encode(scope, pos string) string {
	b, _ := json.Marshal(tokenBody{Pos: pos, Scope: t.scopeHash(scope), At: t.now().Unix()})
	payload := base64.RawURLEncoding.EncodeToString(b)
	return payload + "." + t.sign(payload)
}

// Next returns the token of a listing for scope that stopped at pos, or ""
// when nothing is left (more is false).
func (t *Tokens) Next(scope, pos string, more bool) string {
	if !more {
		return ""
	}
	return t.Encode(scope, pos)
}

// Decode returns the position stored in token, which must have been issued
// for the same scope; "" (no token) is the start.
func (t *Tokens) Decode(scope, token string) (string, error) {
	if token == "" {
		return "", nil
	}
	payload, sig, ok := strings.Cut(token, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(t.sign(payload))) {
		return "", ErrBadToken
	}
	raw, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return "", ErrBadToken
	}
	var body tokenBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return "", ErrBadToken
	}
	if body.Scope != t.scopeHash(scope) || t.now().Sub(time.Unix(body.At, 0)) > t.ttl {
		return "", ErrBadToken
	}
	return body.Pos, nil
}

func (t *Tokens) sign(payload string) string {
	m := hmac.New(sha256.New, t.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}
