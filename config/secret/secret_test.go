package secret_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/strataconf/strata/config/secret"
)

const (
	testPrefix = "/strata/payments/prod"
	testPath   = "db.password"
	testPlain  = "hunter2-correct-horse"
)

var (
	key1 = bytes.Repeat([]byte{0x11}, 32)
	key2 = bytes.Repeat([]byte{0x22}, 32)
)

func newRing(t testing.TB, current string, keys map[string][]byte) *secret.Ring {
	t.Helper()
	r, err := secret.NewRing(current, keys)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

func ring12(t testing.TB) *secret.Ring {
	return newRing(t, "k2", map[string][]byte{"k1": key1, "k2": key2})
}

// mustSeal seals plain at testPrefix and path with ring.
func mustSeal(t testing.TB, ring secret.Keyring, path, plain string) string {
	t.Helper()
	v, err := secret.Seal(context.Background(), ring, testPrefix, path, plain)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return v
}

// leaks returns the forms of key material and plain text an error must not
// contain.
func leaks(plain string, keys ...[]byte) []string {
	var out []string
	if plain != "" {
		out = append(out, plain)
	}
	for _, k := range keys {
		out = append(out, string(k), base64.StdEncoding.EncodeToString(k),
			base64.RawURLEncoding.EncodeToString(k), hex.EncodeToString(k), fmt.Sprint(k), fmt.Sprintf("%x", k))
	}
	return out
}

// checkRefused checks that err wraps want and contains none of leaks.
func checkRefused(t *testing.T, err error, want error, leaks []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %q does not wrap %q", err, want)
	}
	for _, l := range leaks {
		if strings.Contains(err.Error(), l) {
			t.Fatalf("error %q contains secret material %q", err, l)
		}
	}
}

var envelopeRE = regexp.MustCompile(`^strata:enc:v1:([^:\s]+):([A-Za-z0-9_-]+)$`)

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	ring := ring12(t)
	for _, plain := range []string{"", "x", testPlain, "pässwörd ✓ \x00\n", strings.Repeat("long", 16<<10)} {
		sealed := mustSeal(t, ring, testPath, plain)
		m := envelopeRE.FindStringSubmatch(sealed)
		if m == nil {
			t.Fatalf("envelope %.60q does not have the form Prefix<id>:<base64url>", sealed)
		}
		if m[1] != "k2" {
			t.Errorf("sealed with key %s, want the current k2", m[1])
		}
		raw, err := base64.RawURLEncoding.DecodeString(m[2])
		if err != nil {
			t.Fatalf("payload: %v", err)
		}
		if want := 12 + len(plain) + 16; len(raw) != want {
			t.Errorf("payload is %d bytes, want nonce+ciphertext+tag = %d", len(raw), want)
		}
		if len(plain) > 3 && strings.Contains(sealed, plain) {
			t.Errorf("the envelope contains the plain text")
		}
		if !secret.IsSealed(sealed) {
			t.Errorf("IsSealed(envelope) = false")
		}
		if id, ok := secret.KeyID(sealed); !ok || id != "k2" {
			t.Errorf("KeyID = %q, %v; want k2, true", id, ok)
		}
		got, err := secret.Open(ctx, ring, testPrefix, testPath, sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got != plain {
			t.Fatalf("Open = %.40q, want %.40q", got, plain)
		}
	}
}

func TestOpenWithOlderKey(t *testing.T) {
	ctx := context.Background()
	old := newRing(t, "k1", map[string][]byte{"k1": key1})
	sealed := mustSeal(t, old, testPath, testPlain)
	got, err := secret.Open(ctx, ring12(t), testPrefix, testPath, sealed)
	if err != nil || got != testPlain {
		t.Fatalf("Open with a ring whose current key is another = %q, %v", got, err)
	}
}

func TestSealFreshNonce(t *testing.T) {
	ring := ring12(t)
	a := mustSeal(t, ring, testPath, testPlain)
	b := mustSeal(t, ring, testPath, testPlain)
	if a == b {
		t.Fatal("two Seals of the same value are equal: the nonce is not fresh")
	}
	pa, _ := base64.RawURLEncoding.DecodeString(envelopeRE.FindStringSubmatch(a)[2])
	pb, _ := base64.RawURLEncoding.DecodeString(envelopeRE.FindStringSubmatch(b)[2])
	if bytes.Equal(pa[:12], pb[:12]) {
		t.Fatal("two Seals used the same nonce")
	}
}

func TestIsSealedKeyID(t *testing.T) {
	for _, tc := range []struct {
		v      string
		sealed bool
		id     string
	}{
		{"", false, ""},
		{"hunter2", false, ""},
		{"strata:enc:v2:k1:AAAA", false, ""},
		{"strata:enc:v1:", true, ""},
		{"strata:enc:v1:k1", true, ""},
		{"strata:enc:v1::AAAA", true, ""},
		{"strata:enc:v1:k 1:AAAA", true, ""},
		{"strata:enc:v1:k1:", true, "k1"},
		{"strata:enc:v1:k20261201-3fa9c2:AAAA", true, "k20261201-3fa9c2"},
	} {
		if got := secret.IsSealed(tc.v); got != tc.sealed {
			t.Errorf("IsSealed(%q) = %v", tc.v, got)
		}
		id, ok := secret.KeyID(tc.v)
		if id != tc.id || ok != (tc.id != "") {
			t.Errorf("KeyID(%q) = %q, %v; want %q", tc.v, id, ok, tc.id)
		}
	}
}

func TestOpenRefuses(t *testing.T) {
	ctx := context.Background()
	ring := ring12(t)
	sealed := mustSeal(t, ring, testPath, testPlain)
	head, payload, _ := strings.Cut(strings.TrimPrefix(sealed, secret.Prefix), ":")
	head = secret.Prefix + head + ":"
	noLeaks := append(leaks(testPlain, key1, key2), payload)

	open := func(prefix, path, v string) error {
		t.Helper()
		got, err := secret.Open(ctx, ring, prefix, path, v)
		if err == nil {
			t.Fatalf("Open(%q, %q, %.50q...) = %q, want an error", prefix, path, v, got)
		}
		if got != "" {
			t.Fatalf("Open returned %q with its error", got)
		}
		return err
	}

	t.Run("another path", func(t *testing.T) {
		for _, p := range []string{"db.user", "db.password2", "", "users.0.password"} {
			err := open(testPrefix, p, sealed)
			checkRefused(t, err, secret.ErrTampered, noLeaks)
			if p != "" && !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "k2") {
				t.Errorf("error %q does not name the path and the key id", err)
			}
		}
	})
	t.Run("another prefix", func(t *testing.T) {
		for _, p := range []string{"/strata/payments/staging", testPrefix + "/", "", "/strata/payments/pro"} {
			checkRefused(t, open(p, testPath, sealed), secret.ErrTampered, noLeaks)
		}
	})
	t.Run("prefix and path do not run together", func(t *testing.T) {
		// "a" + NUL + "b.c" must not open as "a.b" + NUL + "c".
		s, err := secret.Seal(ctx, ring, "/p", "b.c", testPlain)
		if err != nil {
			t.Fatal(err)
		}
		checkRefused(t, open("/pb", ".c", s), secret.ErrTampered, noLeaks)
		checkRefused(t, open("/", "pb.c", s), secret.ErrTampered, noLeaks)
		if _, err := secret.Seal(ctx, ring, "/p\x00b", "c", "x"); err == nil {
			t.Error("Seal took a prefix with a NUL byte")
		}
	})
	t.Run("flipped bit in every payload byte", func(t *testing.T) {
		raw, err := base64.RawURLEncoding.DecodeString(payload)
		if err != nil {
			t.Fatal(err)
		}
		for i := range raw {
			for _, bit := range []byte{0x01, 0x80} {
				b := bytes.Clone(raw)
				b[i] ^= bit
				checkRefused(t, open(testPrefix, testPath, head+base64.RawURLEncoding.EncodeToString(b)), secret.ErrTampered, noLeaks)
			}
		}
	})
	t.Run("changed character in the base64", func(t *testing.T) {
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		for i := range len(payload) {
			for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, payload[i])+1)%64], alphabet[(strings.IndexByte(alphabet, payload[i])+33)%64]} {
				v := head + payload[:i] + string(c) + payload[i+1:]
				checkRefused(t, open(testPrefix, testPath, v), secret.ErrTampered, noLeaks)
			}
		}
	})
	t.Run("truncated", func(t *testing.T) {
		for n := 1; n < len(payload); n++ {
			checkRefused(t, open(testPrefix, testPath, head+payload[:n]), secret.ErrTampered, noLeaks)
		}
		for _, v := range []string{head, sealed[:len(secret.Prefix)+1], secret.Prefix} {
			checkRefused(t, open(testPrefix, testPath, v), secret.ErrMalformed, noLeaks)
		}
	})
	t.Run("appended", func(t *testing.T) {
		for _, tail := range []string{"A", "AA", "AAAA"} {
			checkRefused(t, open(testPrefix, testPath, sealed+tail), secret.ErrTampered, noLeaks)
		}
	})
	t.Run("unknown key id", func(t *testing.T) {
		v := secret.Prefix + "k9:" + payload
		err := open(testPrefix, testPath, v)
		checkRefused(t, err, secret.ErrUnknownKey, noLeaks)
		for _, want := range []string{"k9", testPath} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
		only1 := newRing(t, "k1", map[string][]byte{"k1": key1})
		_, err = secret.Open(ctx, only1, testPrefix, testPath, sealed)
		checkRefused(t, err, secret.ErrUnknownKey, noLeaks)
		if !strings.Contains(err.Error(), "k2") {
			t.Errorf("error %q does not name the missing key k2", err)
		}
	})
	t.Run("bad base64", func(t *testing.T) {
		for _, p := range []string{
			payload + "=", payload[:len(payload)-2] + "==", "!!!!", "ab+/cd", payload[:8] + " " + payload[8:],
			payload[:8] + "\n" + payload[8:], payload[:8] + "\r" + payload[8:], payload + ":x", "é" + payload,
		} {
			checkRefused(t, open(testPrefix, testPath, head+p), secret.ErrMalformed, noLeaks)
		}
	})
	t.Run("not an envelope", func(t *testing.T) {
		for _, v := range []string{
			testPlain, "", "strata:enc:v2:k2:" + payload, "strata:enc:v1:" + payload,
			"strata:enc:v1::" + payload, "strata:enc:v1:k 2:" + payload, "strata:enc:v1:k\x1b2:" + payload,
			"strata:enc:v1:k\xff:" + payload,
		} {
			checkRefused(t, open(testPrefix, testPath, v), secret.ErrMalformed, noLeaks)
		}
	})
}

func TestOpenErrorHasNoValue(t *testing.T) {
	// A plain value passed to Open is not echoed.
	_, err := secret.Open(context.Background(), ring12(t), testPrefix, testPath, "strata:enc:v1:"+testPlain)
	checkRefused(t, err, secret.ErrMalformed, leaks(testPlain, key1, key2))
}

func TestNewRing(t *testing.T) {
	short := make([]byte, 16)
	for _, tc := range []struct {
		name    string
		current string
		keys    map[string][]byte
	}{
		{"no keys", "k1", nil},
		{"current missing", "k3", map[string][]byte{"k1": key1, "k2": key2}},
		{"empty current", "", map[string][]byte{"k1": key1}},
		{"16-byte key", "k1", map[string][]byte{"k1": short}},
		{"33-byte key", "k1", map[string][]byte{"k1": append(bytes.Clone(key1), 0)}},
		{"nil key", "k1", map[string][]byte{"k1": nil}},
		{"empty id", "", map[string][]byte{"": key1}},
		{"id with colon", "k:1", map[string][]byte{"k:1": key1}},
		{"id with space", "k 1", map[string][]byte{"k 1": key1}},
		{"id with tab", "k1", map[string][]byte{"k1": key1, "k\t2": key2}},
		{"id with newline", "k\n1", map[string][]byte{"k\n1": key1}},
		{"id with control", "k\x001", map[string][]byte{"k\x001": key1}},
		{"id not UTF-8", "k\xff", map[string][]byte{"k\xff": key1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := secret.NewRing(tc.current, tc.keys)
			if err == nil {
				t.Fatalf("NewRing = %v, want an error", r)
			}
			for _, l := range leaks("", key1, key2) {
				if strings.Contains(err.Error(), l) {
					t.Fatalf("error %q contains key material", err)
				}
			}
		})
	}
}

func TestRing(t *testing.T) {
	ctx := context.Background()
	in := map[string][]byte{"k2": bytes.Clone(key2), "k1": bytes.Clone(key1), "a0": bytes.Clone(key1)}
	r := newRing(t, "k2", in)
	in["k2"][0] ^= 0xff // NewRing keeps copies
	delete(in, "k1")

	if got := r.IDs(); fmt.Sprint(got) != "[a0 k1 k2]" {
		t.Errorf("IDs = %v, want sorted [a0 k1 k2]", got)
	}
	id, k, err := r.Current(ctx)
	if err != nil || id != "k2" || !bytes.Equal(k, key2) {
		t.Fatalf("Current = %q, %x, %v", id, k, err)
	}
	k[0] ^= 0xff // the caller's copy
	if k, err := r.Key(ctx, "k2"); err != nil || !bytes.Equal(k, key2) {
		t.Fatalf("Key(k2) = %x, %v", k, err)
	}
	if k, err := r.Key(ctx, "k1"); err != nil || !bytes.Equal(k, key1) {
		t.Fatalf("Key(k1) = %x, %v", k, err)
	}
	_, err = r.Key(ctx, "nope")
	checkRefused(t, err, secret.ErrUnknownKey, leaks("", key1, key2))
	if !strings.Contains(err.Error(), "a0, k1, k2") {
		t.Errorf("error %q does not list the ring's ids", err)
	}

	var zero secret.Ring
	if _, _, err := zero.Current(ctx); err == nil {
		t.Error("zero Ring has a current key")
	}
	if _, err := zero.Key(ctx, "k1"); !errors.Is(err, secret.ErrUnknownKey) {
		t.Errorf("zero Ring Key: %v", err)
	}
	var nilRing *secret.Ring
	if _, _, err := nilRing.Current(ctx); err == nil {
		t.Error("nil Ring has a current key")
	}
	if _, err := nilRing.Key(ctx, "k1"); !errors.Is(err, secret.ErrUnknownKey) {
		t.Errorf("nil Ring Key: %v", err)
	}
	if _, err := secret.Seal(ctx, &zero, testPrefix, testPath, "x"); err == nil {
		t.Error("Seal with an empty ring worked")
	}
}

func TestRingPrintsNoKey(t *testing.T) {
	r := ring12(t)
	var kr secret.Keyring = r
	for _, s := range []string{
		fmt.Sprint(r), fmt.Sprintf("%v %+v %#v %s %x %q", r, r, r, r, r, r),
		fmt.Sprintf("%v %+v %#v", *r, *r, *r), fmt.Sprintf("%v %+v %#v", kr, kr, kr),
		fmt.Sprintf("%v", []any{r, map[string]*secret.Ring{"r": r}}),
		fmt.Sprintf("%v %+v %#v", secret.KeyFile("/x"), secret.KeyFile("/x"), secret.KeyFile("/x")),
	} {
		for _, l := range leaks("", key1, key2) {
			if strings.Contains(s, l) {
				t.Fatalf("%q shows key material", s)
			}
		}
	}
	if s := fmt.Sprint(r); !strings.Contains(s, "k1, k2") {
		t.Errorf("String = %q, want it to name the key ids", s)
	}
}

// badRing is a Keyring that misbehaves.
type badRing struct {
	id  string
	key []byte
	err error
}

func (b badRing) Current(context.Context) (string, []byte, error) { return b.id, b.key, b.err }
func (b badRing) Key(context.Context, string) ([]byte, error)     { return b.key, b.err }

func TestBadKeyring(t *testing.T) {
	ctx := context.Background()
	sealed := mustSeal(t, ring12(t), testPath, testPlain)
	kms := errors.New("kms unavailable")
	short := []byte("0123456789abcdef")
	for _, tc := range []struct {
		name string
		ring secret.Keyring
		want error
	}{
		{"error", badRing{id: "k2", err: kms}, kms},
		{"short key", badRing{id: "k2", key: short}, nil},
		{"nil key", badRing{id: "k2"}, nil},
		{"bad id", badRing{id: "k:2", key: key2}, nil},
		{"nil ring", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := secret.Seal(ctx, tc.ring, testPrefix, testPath, testPlain)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Seal: %v, want an error wrapping %v", err, tc.want)
			}
			if tc.name == "bad id" {
				return // Open takes the id from the envelope
			}
			got, err := secret.Open(ctx, tc.ring, testPrefix, testPath, sealed)
			if err == nil || got != "" || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Open = %q, %v, want an error wrapping %v", got, err, tc.want)
			}
			for _, l := range append(leaks(testPlain, key1, key2), string(short)) {
				if err != nil && strings.Contains(err.Error(), l) {
					t.Errorf("error %q contains %q", err, l)
				}
			}
		})
	}
}
