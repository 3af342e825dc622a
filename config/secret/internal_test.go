package secret

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"strings"
	"testing"
)

// TestEnvelopeFormat decrypts an envelope with the standard library alone,
// from the format the package documents, and seals one the same way for
// Open: other implementations can read and write Strata's values.
func TestEnvelopeFormat(t *testing.T) {
	ctx := context.Background()
	key := bytes.Repeat([]byte{7}, 32)
	ring, err := NewRing("k20261201-3fa9c2", map[string][]byte{"k20261201-3fa9c2": key})
	if err != nil {
		t.Fatal(err)
	}
	const prefix, path, plain = "/strata/app/prod", "users.0.password", "s3cret"
	ad := []byte("strata:v1\x00" + prefix + "\x00" + path)
	if got := associatedData(prefix, path); !bytes.Equal(got, ad) {
		t.Fatalf("associated data = %q, want %q", got, ad)
	}

	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	sealed, err := Seal(ctx, ring, prefix, path, plain)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := strings.CutPrefix(sealed, "strata:enc:v1:k20261201-3fa9c2:")
	if !ok {
		t.Fatalf("envelope %q", sealed)
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := gcm.Open(nil, raw[:12], raw[12:], ad)
	if err != nil || string(got) != plain {
		t.Fatalf("standard library Open = %q, %v", got, err)
	}

	nonce := bytes.Repeat([]byte{9}, 12)
	theirs := "strata:enc:v1:k20261201-3fa9c2:" + base64.RawURLEncoding.EncodeToString(gcm.Seal(bytes.Clone(nonce), nonce, []byte(plain), ad))
	if got, err := Open(ctx, ring, prefix, path, theirs); err != nil || got != plain {
		t.Fatalf("Open of a standard library envelope = %q, %v", got, err)
	}
}

// TestSealNonceSource checks that seal takes its nonce from the reader it is
// given, and fails when it cannot read one.
func TestSealNonceSource(t *testing.T) {
	ctx := context.Background()
	ring, _ := NewRing("k1", map[string][]byte{"k1": bytes.Repeat([]byte{1}, 32)})
	a, err := seal(ctx, ring, "/p", "a", "x", bytes.NewReader(make([]byte, 12)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a, "strata:enc:v1:k1:AAAAAAAAAAAAAAAA") {
		t.Errorf("envelope %q does not start with the zero nonce", a)
	}
	if _, err := seal(ctx, ring, "/p", "a", "x", bytes.NewReader(make([]byte, 5))); err == nil {
		t.Error("seal with a short random source worked")
	}
}

func TestCheckID(t *testing.T) {
	for _, id := range []string{"k1", "k20261201-3fa9c2", "kms/alias/prod", "ключ", "a.b_c-d"} {
		if err := checkID(id); err != nil {
			t.Errorf("checkID(%q) = %v", id, err)
		}
	}
	for _, id := range []string{"", "a:b", "a b", "a\tb", "a\u00a0b", "a\u2003b", "a\x00b", "a\x7fb", "\xff", "a\u0085b"} {
		if err := checkID(id); err == nil {
			t.Errorf("checkID(%q) = nil", id)
		}
	}
}
