package codec_test

import (
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/strataconf/strata/codec"
)

// fuzzUnmarshal checks that c never panics, fails only with a *SyntaxError,
// and that what it reads it writes and reads back.
func fuzzUnmarshal(t *testing.T, c codec.Codec, b []byte) {
	m, err := c.Unmarshal(b)
	if err != nil {
		var se *codec.SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
		}
		if se.Line < 0 || se.Column < 0 {
			t.Fatalf("negative position in %#v", se)
		}
		return
	}
	if m == nil {
		t.Fatal("nil map without error")
	}
	assertNormal(t, m)
	out, err := c.Marshal(m)
	if err != nil {
		t.Fatalf("Marshal(%#v): %v", m, err)
	}
	m2, err := c.Unmarshal(out)
	if err != nil {
		t.Fatalf("Unmarshal(Marshal(%#v)) = %v\ndocument:\n%s", m, err, out)
	}
	out2, err := c.Marshal(m2)
	if err != nil {
		t.Fatalf("second Marshal: %v", err)
	}
	if string(out) != string(out2) {
		t.Fatalf("Marshal not stable:\n%s\nthen\n%s", out, out2)
	}
}

func FuzzUnmarshalJSON(f *testing.F) {
	for _, s := range []string{"", "{}", "null", "[1]", `{"a": {"b": [1, "x", true, null, 1.5e300]}}`,
		fullJSON, "{\n\"a\": 1\n\"b\": 2}", `{"a&<>": "\u00e9\ud83d\ude00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzUnmarshal(t, codec.JSON, b) })
}

func FuzzUnmarshalYAML(f *testing.F) {
	for _, s := range []string{"", "a: 1", "- 1", "1: a\n2: {3: b}\n", "a: &x {b: 1}\nc: *x\n", "x: .nan\ny: .inf\n",
		fullYAML, "a:\n  b: 1\n c: 2\n", "t: 2001-12-14\nb: !!binary aGk=\n", "'<<': 1\n", "? [a, b]\n: c\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzUnmarshal(t, codec.YAML, b) })
}

func FuzzUnmarshalTOML(f *testing.F) {
	for _, s := range []string{"", "a = 1", "[a]\nb = [1, 2]\n[[c]]\nd = 'x'\n", fullTOML, "a = nan\nb = 1979-05-27\nc = 07:32:00\n",
		"a = 1\nb = 2\n[c]\nd = = 3\n", "\"\" = 1\n'a.b' = {c = [{d = 1}]}\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzUnmarshal(t, codec.TOML, b) })
}

// FuzzLeafRoundTrip checks that DecodeLeaf reads back what EncodeLeaf
// writes, for each leaf kind.
func FuzzLeafRoundTrip(f *testing.F) {
	f.Add(int64(0), 0.0, false, "")
	f.Add(int64(math.MinInt64), math.Inf(1), true, "15s")
	f.Add(int64(math.MaxInt64), -0.0, true, " [1,2] ")
	f.Add(int64(-1), math.NaN(), false, "é\x00\xff")
	f.Add(int64(1500), 1e-320, true, `{"a":1}`)
	f.Fuzz(func(t *testing.T, i int64, fl float64, b bool, s string) {
		values := []any{i, int32(i), uint64(i), fl, float32(fl), b, s, time.Duration(i),
			[]time.Duration{time.Duration(i)}, []float64{fl}}
		composite := []any{[]any{i, s}, []string{s, s}, map[string]float64{s: fl}, Server{Host: s, Port: uint16(i)}}
		if utf8.ValidString(s) {
			values = append(values, composite...)
		} else {
			// JSON text cannot carry invalid UTF-8: EncodeLeaf refuses it.
			for _, v := range composite {
				if text, err := codec.EncodeLeaf(v); err == nil {
					t.Fatalf("EncodeLeaf(%#v) = %q, want an error", v, text)
				}
			}
		}
		for _, v := range values {
			text, err := codec.EncodeLeaf(v)
			if err != nil {
				t.Fatalf("EncodeLeaf(%#v): %v", v, err)
			}
			dst := reflect.New(reflect.TypeOf(v)).Elem()
			if err := codec.DecodeLeaf(text, dst); err != nil {
				t.Fatalf("DecodeLeaf(%q) into %T: %v", text, v, err)
			}
			if got := dst.Interface(); !sameLeaf(got, v) {
				t.Fatalf("%T: EncodeLeaf gave %q, DecodeLeaf gave %#v, want %#v", v, text, got, v)
			}
		}
	})
}

// sameLeaf is reflect.DeepEqual, but NaN equals NaN, and a []any holding an
// int64 compares by value (JSON text brings numbers back as int64).
func sameLeaf(got, want any) bool {
	switch w := want.(type) {
	case float64:
		g := got.(float64)
		return g == w && math.Signbit(g) == math.Signbit(w) || math.IsNaN(g) && math.IsNaN(w)
	case float32:
		g := got.(float32)
		return g == w && math.Signbit(float64(g)) == math.Signbit(float64(w)) || g != g && w != w
	case []float64:
		g := got.([]float64)
		return len(g) == len(w) && (len(w) == 0 || sameLeaf(g[0], w[0]))
	case map[string]float64:
		g := got.(map[string]float64)
		if len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if gv, ok := g[k]; !ok || !sameLeaf(gv, v) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

// FuzzBind binds trees from fuzzed documents onto App, which has a field of
// every kind: Bind must not panic, must fail only with a *BindError, and
// must give the same answer twice.
func FuzzBind(f *testing.F) {
	for _, s := range []string{fullJSON, fullYAML, `{"i": "abc", "servers": {"0": {"port": "x"}}}`, `{"tags": "[1, {}]", "db": "{\"port\": 1e400}"}`,
		`{"ports": [1,2,3,4], "any": {"a": [null]}, "p": {}, "ps": null, "by_id": {"x": 1}}`, `{"STR": 1, "Str": 2, "d": 1.5, "t": 5}`,
		`{"u64": -1, "i8": 128, "f32": 1e39, "lvl": true, "ip": [1]}`, "a: 1\nb: [x]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tree, err := codec.JSON.Unmarshal(b)
		if err != nil {
			if tree, err = codec.YAML.Unmarshal(b); err != nil {
				return
			}
		}
		var a1, a2 App
		unused1, err1 := codec.Bind(tree, &a1)
		unused2, err2 := codec.Bind(tree, &a2)
		if err1 != nil {
			var be *codec.BindError
			if !errors.As(err1, &be) || len(be.Fields) == 0 {
				t.Fatalf("error %v is not a *BindError", err1)
			}
			if !reflect.DeepEqual(a1, App{}) {
				t.Fatalf("dst changed on error: %+v", a1)
			}
			if err2 == nil || err1.Error() != err2.Error() {
				t.Fatalf("Bind not deterministic: %v vs %v", err1, err2)
			}
		}
		if !slices.IsSorted(unused1) || !slices.Equal(unused1, unused2) {
			t.Fatalf("unused %q then %q", unused1, unused2)
		}
	})
}
