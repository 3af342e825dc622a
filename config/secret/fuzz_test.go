package secret

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// fuzzKeys are the fuzz ring's keys.
var fuzzKeys = map[string][]byte{
	"k1":               bytes.Repeat([]byte{0x5a}, 32),
	"k20261201-3fa9c2": bytes.Repeat([]byte{0xa5}, 32),
}

// fuzzSealed is an envelope the fuzz target knows to be valid, made with a
// fixed nonce so that it is the same in every run.
type fuzzSealed struct{ prefix, path, plain, sealed string }

// FuzzOpen feeds the envelope decoder any value, prefix and path. Open must
// never panic, must refuse with ErrMalformed, ErrUnknownKey or ErrTampered,
// must keep key material out of its errors, and must return a value only for
// an envelope Seal made for exactly that prefix and path.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	ring, err := NewRing("k20261201-3fa9c2", fuzzKeys)
	if err != nil {
		f.Fatal(err)
	}
	old, err := NewRing("k1", fuzzKeys)
	if err != nil {
		f.Fatal(err)
	}
	var valid []fuzzSealed
	for i, tc := range []struct {
		ring                *Ring
		prefix, path, plain string
	}{
		{ring, "/strata/payments/prod", "db.password", "hunter2"},
		{ring, "/strata/payments/prod", "users.0.password", ""},
		{old, "/strata/payments/prod", "db.password", "older key"},
		{ring, "", "", strings.Repeat("x", 100)},
	} {
		nonce := bytes.Repeat([]byte{byte(i + 1)}, nonceSize)
		s, err := seal(ctx, tc.ring, tc.prefix, tc.path, tc.plain, bytes.NewReader(nonce))
		if err != nil {
			f.Fatal(err)
		}
		valid = append(valid, fuzzSealed{tc.prefix, tc.path, tc.plain, s})
	}

	// Seeds: the valid envelopes and broken ones.
	for _, v := range valid {
		f.Add(v.prefix, v.path, v.sealed)
		_, payload, _ := strings.Cut(strings.TrimPrefix(v.sealed, Prefix), ":")
		id, _ := KeyID(v.sealed)
		head := Prefix + id + ":"
		raw, _ := b64.DecodeString(payload)
		flipped := bytes.Clone(raw)
		flipped[len(flipped)/2] ^= 1
		f.Add(v.prefix, v.path+"x", v.sealed)                                     // another path
		f.Add(v.prefix+"/", v.path, v.sealed)                                     // another prefix
		f.Add(v.prefix, v.path, head+b64.EncodeToString(flipped))                 // a flipped bit
		f.Add(v.prefix, v.path, v.sealed[:len(v.sealed)-1])                       // truncated
		f.Add(v.prefix, v.path, head+payload[:len(payload)-1]+"B")                // padding bits
		f.Add(v.prefix, v.path, v.sealed+"=")                                     // padded
		f.Add(v.prefix, v.path, head+base64.StdEncoding.EncodeToString(raw))      // standard alphabet
		f.Add(v.prefix, v.path, head+payload[:4]+"\n"+payload[4:])                // a newline
		f.Add(v.prefix, v.path, Prefix+"k9:"+payload)                             // unknown key
		f.Add(v.prefix, v.path, Prefix+":"+payload)                               // no key id
		f.Add(v.prefix, v.path, head)                                             // no payload
		f.Add(v.prefix, v.path, strings.Replace(v.sealed, "v1", "v2", 1))         // another version
		f.Add(v.prefix, v.path, head+b64.EncodeToString(raw[:nonceSize+tagSize])) // no ciphertext
	}
	f.Add("/p\x00x", "a", valid[0].sealed)
	f.Add("/p", "a", "plain text")

	var keyText []string
	for _, k := range fuzzKeys {
		keyText = append(keyText, string(k), base64.StdEncoding.EncodeToString(k), b64.EncodeToString(k))
	}

	f.Fuzz(func(t *testing.T, prefix, path, sealed string) {
		got, err := Open(ctx, ring, prefix, path, sealed)
		var want *fuzzSealed
		for i, v := range valid {
			if v.prefix == prefix && v.path == path && v.sealed == sealed {
				want = &valid[i]
			}
		}
		if err == nil {
			if want == nil {
				t.Fatalf("Open(%q, %q, %q) = %q: a value for an envelope Seal did not make", prefix, path, sealed, got)
			}
			if got != want.plain {
				t.Fatalf("Open = %q, want %q", got, want.plain)
			}
			return
		}
		if got != "" {
			t.Fatalf("Open returned %q with error %v", got, err)
		}
		if want != nil && strings.IndexByte(prefix, 0) < 0 {
			t.Fatalf("Open of a valid envelope: %v", err)
		}
		if strings.IndexByte(prefix, 0) < 0 && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrTampered) {
			t.Fatalf("error %v wraps none of ErrMalformed, ErrUnknownKey, ErrTampered", err)
		}
		for _, k := range keyText {
			// The error names the path and the prefix it was given: a
			// caller who passes key material as a path sees it again.
			if strings.Contains(err.Error(), k) && !strings.Contains(prefix+path, k) {
				t.Fatalf("error %q contains key material", err)
			}
		}
		for _, v := range valid {
			if len(v.plain) > 3 && strings.Contains(err.Error(), v.plain) && !strings.Contains(prefix+path, v.plain) {
				t.Fatalf("error %q contains a plain text", err)
			}
		}
		// KeyID agrees with Open about the key id.
		if errors.Is(err, ErrTampered) || errors.Is(err, ErrUnknownKey) {
			if _, ok := KeyID(sealed); !ok {
				t.Fatalf("Open got past the key id of %q (%v), KeyID did not", sealed, err)
			}
		}
		if IsSealed(sealed) != strings.HasPrefix(sealed, Prefix) {
			t.Fatal("IsSealed")
		}
	})
}
