package secret

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Ring is an in-memory keyring: named 256-bit keys, one of them current. It
// does not change after NewRing and is safe for concurrent use. Printing a
// Ring shows its key ids, never its keys.
type Ring struct {
	current string
	keys    map[string][]byte
}

// NewRing returns a keyring holding copies of keys, sealing with the key
// named current. Each key is exactly 32 bytes; each id is non-empty, valid
// UTF-8, and has no ':', white space or control characters; current must be
// one of the ids.
func NewRing(current string, keys map[string][]byte) (*Ring, error) {
	if len(keys) == 0 {
		return nil, errors.New("secret: NewRing: no keys")
	}
	r := &Ring{current: current, keys: make(map[string][]byte, len(keys))}
	for _, id := range slices.Sorted(maps.Keys(keys)) {
		if err := checkID(id); err != nil {
			return nil, fmt.Errorf("secret: NewRing: key id %q: %w", id, err)
		}
		if n := len(keys[id]); n != keySize {
			return nil, fmt.Errorf("secret: NewRing: key %s is %d bytes, want %d", id, n, keySize)
		}
		r.keys[id] = slices.Clone(keys[id])
	}
	if _, ok := r.keys[current]; !ok {
		return nil, fmt.Errorf("secret: NewRing: the current key %q is not among the keys (%s)", current, strings.Join(r.IDs(), ", "))
	}
	return r, nil
}

// Current returns the id of the current key and a copy of the key.
func (r *Ring) Current(ctx context.Context) (string, []byte, error) {
	if r == nil || r.keys == nil {
		return "", nil, errors.New("secret: empty keyring")
	}
	return r.current, slices.Clone(r.keys[r.current]), nil
}

// Key returns a copy of the key with id, or an error wrapping ErrUnknownKey
// that lists the ids the ring has.
func (r *Ring) Key(ctx context.Context, id string) ([]byte, error) {
	if r != nil {
		if k, ok := r.keys[id]; ok {
			return slices.Clone(k), nil
		}
	}
	return nil, fmt.Errorf("%w (the keyring has %s)", ErrUnknownKey, r.describe())
}

// IDs returns the ids of the ring's keys, sorted.
func (r *Ring) IDs() []string {
	if r == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(r.keys))
}

// has reports whether the ring has a key with id.
func (r *Ring) has(id string) bool {
	_, ok := r.keys[id]
	return ok
}

// describe lists the ids, or says there are none.
func (r *Ring) describe() string {
	ids := r.IDs()
	if len(ids) == 0 {
		return "no keys"
	}
	return strings.Join(ids, ", ")
}

// String names the current key and the ids, never a key.
func (r Ring) String() string {
	return fmt.Sprintf("secret.Ring{current: %s, keys: %s}", r.current, r.describe())
}

// GoString is String, so that %#v shows no key either.
func (r Ring) GoString() string { return r.String() }
