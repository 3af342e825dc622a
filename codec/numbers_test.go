package codec_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/strataconf/strata/codec"
)

// Numbers are kept exactly: integers as int64 (uint64 above int64), other
// numbers as float64 only when that float is the very number written.
func TestUnmarshalNumbersExactly(t *testing.T) {
	tests := []struct {
		name string
		c    codec.Codec
		doc  string
		want any
	}{
		{"json beyond 2^53", codec.JSON, `{"n": 9007199254740993}`, int64(9007199254740993)},
		{"json int64 min", codec.JSON, `{"n": -9223372036854775808}`, int64(math.MinInt64)},
		{"json uint64 max", codec.JSON, `{"n": 18446744073709551615}`, uint64(math.MaxUint64)},
		{"json small int", codec.JSON, `{"n": 5}`, int64(5)},
		{"json fraction", codec.JSON, `{"n": 0.1}`, 0.1},
		{"json exponent", codec.JSON, `{"n": 1.5e3}`, 1500.0},
		{"json large exact float", codec.JSON, `{"n": 1e300}`, 1e300},
		{"json negative zero", codec.JSON, `{"n": -0}`, math.Copysign(0, -1)},
		{"json in a list", codec.JSON, `{"n": [9007199254740993]}`, []any{int64(9007199254740993)}},
		{"yaml beyond 2^53", codec.YAML, "n: 9007199254740993\n", 9007199254740993},
		{"yaml uint64 max", codec.YAML, "n: 18446744073709551615\n", uint64(math.MaxUint64)},
		{"yaml fraction", codec.YAML, "n: 0.1\n", 0.1},
		{"yaml quoted big", codec.YAML, "n: '18446744073709551617'\n", "18446744073709551617"},
		{"toml beyond 2^53", codec.TOML, "n = 9007199254740993\n", int64(9007199254740993)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.c.Unmarshal([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			got := m["n"]
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("n = %#v (%T), want %#v (%T)", got, got, tt.want, tt.want)
			}
			if f, ok := got.(float64); ok && math.Signbit(f) != math.Signbit(tt.want.(float64)) {
				t.Errorf("sign of zero lost")
			}
			text, err := codec.EncodeLeaf(got)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(text, "e+") && !strings.Contains(tt.doc, "e") {
				t.Errorf("leaf text %s rounds the number", text)
			}
		})
	}
}

// A number that no int64, uint64 or float64 holds exactly is refused, with
// the path, rather than rounded.
func TestUnmarshalRefusesInexactNumbers(t *testing.T) {
	tests := []struct {
		name string
		c    codec.Codec
		doc  string
		path string
	}{
		{"json beyond uint64", codec.JSON, `{"a": {"n": 18446744073709551617}}`, "a.n"},
		{"json in a list", codec.JSON, `{"a": [1, 100000000000000000000000001]}`, "a.1"},
		{"json too many digits", codec.JSON, `{"f": 1.00000000000000000001}`, "f"},
		{"json overflow", codec.JSON, `{"f": 1e400}`, "f"},
		{"yaml beyond uint64", codec.YAML, "a:\n  n: 18446744073709551617\n", "a.n"},
		{"yaml below int64", codec.YAML, "n: -9223372036854775809\n", "n"},
		{"yaml in a list", codec.YAML, "a:\n  - 1\n  - 123456789012345678901234567890\n", "a.1"},
		{"yaml too many digits", codec.YAML, "f: 0.10000000000000000001\n", "f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := tt.c.Unmarshal([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Unmarshal = %v, want an error", m)
			}
			var se *codec.SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("error %v does not wrap *SyntaxError", err)
			}
			if !strings.Contains(err.Error(), tt.path+": ") || !strings.Contains(err.Error(), "exactly") {
				t.Errorf("error %q does not name %s and say the number cannot be kept exactly", err, tt.path)
			}
		})
	}
}
