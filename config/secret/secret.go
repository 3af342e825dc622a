package secret

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Prefix starts every sealed value:
// "strata:enc:v1:<key-id>:<base64url, no padding, of nonce||ciphertext>".
const Prefix = "strata:enc:v1:"

// Sentinel errors, checkable with errors.Is.
var (
	// ErrUnknownKey marks a sealed value whose key id names no key of the
	// keyring.
	ErrUnknownKey = errors.New("unknown key")
	// ErrTampered marks a sealed value of the right shape that does not
	// authenticate: it was sealed for another path or prefix (the
	// associated data), a byte of it was changed, or it was truncated.
	ErrTampered = errors.New("sealed value does not authenticate")
	// ErrMalformed marks a value that is not a well-formed envelope: it does
	// not start with Prefix, or it does but lacks a valid key id or a
	// base64url payload.
	ErrMalformed = errors.New("malformed sealed value")
	// ErrKeyFile marks a key file that cannot be used: missing, readable by
	// group or others, not valid JSON, or holding a bad key.
	ErrKeyFile = errors.New("bad key file")
)

const (
	keySize   = 32 // AES-256
	nonceSize = 12 // the standard GCM nonce
	tagSize   = 16 // the standard GCM tag
	adVersion = "strata:v1\x00"
)

// b64 encodes and decodes payloads. Strict refuses non-zero padding bits, so
// that one payload has one spelling; parse has already refused CR and LF,
// which the decoder would otherwise skip.
var b64 = base64.RawURLEncoding.Strict()

// Keyring holds named 256-bit keys, one of them current. A KMS can
// implement it. Implementations must be safe for concurrent use.
type Keyring interface {
	// Current returns the id and the key new values are sealed with.
	Current(ctx context.Context) (id string, key []byte, err error)
	// Key returns the key with id, or an error wrapping ErrUnknownKey.
	Key(ctx context.Context, id string) ([]byte, error)
}

// IsSealed reports whether v starts with Prefix, that is whether it is meant
// to be a sealed value (Open says whether it is a well-formed one).
func IsSealed(v string) bool { return strings.HasPrefix(v, Prefix) }

// KeyID returns the key id of a sealed value: ok is false when v does not
// start with Prefix followed by a valid key id and a ':'. It does not look at
// the payload.
func KeyID(v string) (id string, ok bool) {
	rest, ok := strings.CutPrefix(v, Prefix)
	if !ok {
		return "", false
	}
	id, _, ok = strings.Cut(rest, ":")
	if !ok || checkID(id) != nil {
		return "", false
	}
	return id, true
}

// Seal encrypts plain with the ring's current key: AES-256-GCM, a fresh
// random 12-byte nonce, and associated data binding it to prefix and the
// dotted config path ("db.password", "users.0.password"): exactly
// "strata:v1\x00" + prefix + "\x00" + path. It returns the envelope,
// Prefix + key id + ":" + base64url (no padding) of nonce||ciphertext.
func Seal(ctx context.Context, ring Keyring, prefix, path, plain string) (string, error) {
	return seal(ctx, ring, prefix, path, plain, rand.Reader)
}

// seal is Seal with the nonce read from random.
func seal(ctx context.Context, ring Keyring, prefix, path, plain string, random io.Reader) (string, error) {
	if ring == nil {
		return "", fmt.Errorf("secret: seal %s: no keyring", path)
	}
	if err := checkPrefix(prefix); err != nil {
		return "", fmt.Errorf("secret: seal %s: %w", path, err)
	}
	id, key, err := ring.Current(ctx)
	if err != nil {
		return "", fmt.Errorf("secret: seal %s: current key: %w", path, err)
	}
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("secret: seal %s: the keyring's current key id %q: %w", path, id, err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return "", fmt.Errorf("secret: seal %s: key %s: %w", path, id, err)
	}
	raw := make([]byte, nonceSize, nonceSize+len(plain)+tagSize)
	if _, err := io.ReadFull(random, raw); err != nil {
		return "", fmt.Errorf("secret: seal %s: random nonce: %w", path, err)
	}
	raw = aead.Seal(raw, raw[:nonceSize], []byte(plain), associatedData(prefix, path))
	var b strings.Builder
	b.Grow(len(Prefix) + len(id) + 1 + b64.EncodedLen(len(raw)))
	b.WriteString(Prefix)
	b.WriteString(id)
	b.WriteByte(':')
	b.WriteString(b64.EncodeToString(raw))
	return b.String(), nil
}

// Open decrypts a sealed value, sealed for prefix and path, with the ring's
// key its envelope names. Its errors name the key id and the path, never the
// value or any key material; they wrap ErrMalformed, ErrUnknownKey (or the
// ring's own error) or ErrTampered.
func Open(ctx context.Context, ring Keyring, prefix, path, sealed string) (string, error) {
	if ring == nil {
		return "", fmt.Errorf("secret: %s: no keyring", path)
	}
	if err := checkPrefix(prefix); err != nil {
		return "", fmt.Errorf("secret: %s: %w", path, err)
	}
	id, payload, err := parse(sealed)
	if err != nil {
		if id != "" {
			return "", fmt.Errorf("secret: %s: key %s: %w", path, id, err)
		}
		return "", fmt.Errorf("secret: %s: %w", path, err)
	}
	raw, err := b64.DecodeString(payload)
	if err != nil {
		// Only the alphabet's characters are left: a length no encoding
		// has, or non-zero padding bits.
		return "", fmt.Errorf("secret: %s: key %s: %w (the payload is not a canonical encoding: truncated or changed)", path, id, ErrTampered)
	}
	if len(raw) < nonceSize+tagSize {
		return "", fmt.Errorf("secret: %s: key %s: %w (too short to hold a nonce and a tag: truncated)", path, id, ErrTampered)
	}
	key, err := ring.Key(ctx, id)
	if err != nil {
		return "", fmt.Errorf("secret: %s: key %s: %w", path, id, err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return "", fmt.Errorf("secret: %s: key %s: %w", path, id, err)
	}
	plain, err := aead.Open(nil, raw[:nonceSize], raw[nonceSize:], associatedData(prefix, path))
	if err != nil {
		return "", fmt.Errorf("secret: %s: key %s: %w", path, id, ErrTampered)
	}
	return string(plain), nil
}

// parse splits a sealed value into its key id and payload. On an error it
// returns the id when the id itself is valid.
func parse(v string) (id, payload string, err error) {
	rest, ok := strings.CutPrefix(v, Prefix)
	if !ok {
		return "", "", fmt.Errorf("%w: it does not start with %s", ErrMalformed, Prefix)
	}
	id, payload, ok = strings.Cut(rest, ":")
	if !ok {
		return "", "", fmt.Errorf("%w: no ':' after the key id", ErrMalformed)
	}
	if err := checkID(id); err != nil {
		return "", "", fmt.Errorf("%w: bad key id: %w", ErrMalformed, err)
	}
	if payload == "" {
		return id, "", fmt.Errorf("%w: empty payload", ErrMalformed)
	}
	for i := 0; i < len(payload); i++ {
		if !isB64(payload[i]) {
			return id, "", fmt.Errorf("%w: the payload is not unpadded base64url (byte %d of it)", ErrMalformed, i)
		}
	}
	return id, payload, nil
}

// isB64 reports whether c is in the base64url alphabet.
func isB64(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// checkID says why id cannot be a key id, or returns nil. Its errors do not
// quote the id.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("empty")
	case !utf8.ValidString(id):
		return errors.New("not valid UTF-8")
	case strings.ContainsRune(id, ':'):
		return errors.New("contains ':'")
	}
	for _, r := range id {
		if unicode.IsSpace(r) {
			return errors.New("contains white space")
		}
		if unicode.IsControl(r) {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// checkPrefix refuses a prefix with a NUL byte, which would make the
// associated data ambiguous.
func checkPrefix(prefix string) error {
	if strings.IndexByte(prefix, 0) >= 0 {
		return errors.New("the prefix contains a NUL byte")
	}
	return nil
}

// associatedData binds a ciphertext to its prefix and config path.
func associatedData(prefix, path string) []byte {
	ad := make([]byte, 0, len(adVersion)+len(prefix)+1+len(path))
	ad = append(ad, adVersion...)
	ad = append(ad, prefix...)
	ad = append(ad, 0)
	return append(ad, path...)
}

// newAEAD returns AES-256-GCM with key. Its errors do not contain the key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != keySize {
		return nil, fmt.Errorf("the keyring returned a %d-byte key, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("GCM: %w", err)
	}
	return aead, nil
}
