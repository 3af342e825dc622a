package schema

import (
	"encoding/json"
	"math"
	"net"
	"reflect"
	"testing"
	"time"
)

// mustCompile compiles a hand-written schema for the package's own tests.
func mustCompile(t *testing.T, doc string) *Schema {
	t.Helper()
	s, err := Compile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const coerceSchema = `{
  "$defs": {"port": {"type": "integer"}, "portRef": {"$ref": "#/$defs/port"}},
  "type": "object",
  "properties": {
    "i": {"type": "integer"},
    "n": {"type": "number"},
    "b": {"type": "boolean"},
    "s": {"type": "string"},
    "is": {"type": ["integer", "string"]},
    "any": {},
    "list": {"type": "array", "items": {"type": "integer"}},
    "pair": {"type": "array", "prefixItems": [{"type": "boolean"}], "items": {"type": "number"}},
    "obj": {"type": "object", "properties": {"p": {"$ref": "#/$defs/portRef"}}, "additionalProperties": {"type": "boolean"}}
  }
}`

// TestCoerce: etcd leaf text (and typed values) become the JSON values the
// schema wants, as codec.Bind reads them; text that does not parse stays
// text, for the validator to reject.
func TestCoerce(t *testing.T) {
	s := mustCompile(t, coerceSchema)
	tests := []struct {
		name string
		key  string
		in   any
		want any
	}{
		{"integer text", "i", "42", int64(42)},
		{"integer text with spaces", "i", " 42 ", int64(42)},
		{"integer text with plus stays text", "i", "+1", "+1"},
		{"integer beyond int64", "i", "18446744073709551615", uint64(math.MaxUint64)},
		{"integer text fraction stays text", "i", "4.5", "4.5"},
		{"integer text not a number", "i", "abc", "abc"},
		{"number text fraction", "n", "2.5", 2.5},
		{"number text integral", "n", "3", int64(3)},
		{"number text NaN stays text", "n", "NaN", "NaN"},
		{"number text overflow stays text", "n", "1e400", "1e400"},
		{"boolean text", "b", "TRUE", true},
		{"boolean text invalid", "b", "yes", "yes"},
		{"int where string wanted", "s", int64(12), "12"},
		{"uint where string wanted", "s", uint64(math.MaxUint64), "18446744073709551615"},
		{"float where string wanted", "s", 0.5, "0.5"},
		{"bool where string wanted", "s", true, "true"},
		{"JSON number where string wanted", "s", json.Number("1.50"), "1.50"},
		{"number kept where string is one choice", "is", int64(3), int64(3)},
		{"text kept where string is one choice", "is", "7", "7"},
		{"no type: text kept", "any", "5", "5"},
		{"array JSON text", "list", `[1, "2", null]`, []any{int64(1), int64(2), nil}},
		{"array JSON text broken", "list", `[1,`, `[1,`},
		{"array from index mapping", "list", map[string]any{"0": "1", "1": "2"}, []any{int64(1), int64(2)}},
		{"index mapping with a gap stays a mapping", "list", map[string]any{"0": "1", "2": "2"}, map[string]any{"0": "1", "2": "2"}},
		{"prefixItems then items", "pair", []any{"true", "1.5", "2"}, []any{true, 1.5, int64(2)}},
		{"property through two $refs, additionalProperties", "obj", map[string]any{"p": "80", "q": "false"}, map[string]any{"p": int64(80), "q": false}},
		{"object JSON text, null member dropped", "obj", `{"p": "81", "z": null}`, map[string]any{"p": int64(81)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := s.coerce(normalize(map[string]any{tt.key: tt.in}), s.doc, 0)
			got := out.(map[string]any)[tt.key]
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("coerce(%#v) = %#v (%T), want %#v (%T)", tt.in, got, got, tt.want, tt.want)
			}
		})
	}
}

// TestNormalize: Go values from documents and struct defaults become JSON
// values before coercion.
func TestNormalize(t *testing.T) {
	n := 5
	var nilPtr *int
	tests := []struct {
		name string
		in   any
		want any
	}{
		{"time", time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), "2024-01-02T03:04:05.000000006Z"},
		{"duration", 90 * time.Second, "1m30s"},
		{"TextMarshaler", net.ParseIP("10.0.0.1"), "10.0.0.1"},
		{"small int", int8(-3), int64(-3)},
		{"small uint", uint8(7), uint64(7)},
		{"float32 keeps its shortest text", float32(0.1), 0.1},
		{"pointer", &n, int64(5)},
		{"nil pointer", nilPtr, nil},
		{"typed slice", []string{"a", "b"}, []any{"a", "b"}},
		{"nil slice", []string(nil), nil},
		{"typed map", map[string]int{"cpu": -1}, map[string]any{"cpu": int64(-1)}},
		{"nil members dropped", map[string]any{"a": nil, "b": nilPtr, "c": 1}, map[string]any{"c": int64(1)}},
		{"map with other keys left alone", map[int]string{1: "x"}, map[int]string{1: "x"}},
		{"other values left alone", struct{}{}, struct{}{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalize(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("normalize(%#v) = %#v (%T), want %#v (%T)", tt.in, got, got, tt.want, tt.want)
			}
		})
	}
}
