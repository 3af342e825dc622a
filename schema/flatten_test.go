package schema

import (
	"errors"
	"strings"
	"testing"
)

const flattenSchema = `{
  "type": "object",
  "properties": {
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "ratio": {"type": "number", "exclusiveMaximum": 0.5},
    "env": {"type": "string", "not": {"anyOf": [{"const": "test"}, {"const": "dev"}]}},
    "lvl": {"type": "integer", "not": {"const": 3}},
    "region": {"enum": ["eu", "us"]},
    "ip": {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    "pick": {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 3}]},
    "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
    "db": {"type": "object", "required": ["host", "password"], "additionalProperties": false,
      "properties": {"host": {"type": "string"}, "password": {"type": "string", "x-secret": true}}},
    "labels": {"type": "object", "propertyNames": {"pattern": "^[a-z]+$"}},
    "list": {"type": "array", "items": {"type": "object", "propertyNames": {"pattern": "^k"}}},
    "nested": {"type": "object", "additionalProperties": {"type": "object",
      "properties": {"inner": {"type": "object", "propertyNames": {"maxLength": 2}}}}},
    "never": false
  }
}`

// TestFlatten: each validator failure becomes one FieldError per path, with
// the keyword as Rule and its value as Param.
func TestFlatten(t *testing.T) {
	s := mustCompile(t, flattenSchema)
	tests := []struct {
		name string
		tree map[string]any
		want []string // "path rule=param (value)", sorted as Check sorts
	}{
		{"bound", map[string]any{"port": "70000"}, []string{"port maximum=65535 (70000)"}},
		{"fractional bound", map[string]any{"ratio": "0.75"}, []string{"ratio exclusiveMaximum=0.5 (0.75)"}},
		{"type", map[string]any{"port": "abc"}, []string{"port type=integer (abc)"}},
		{"not of consts", map[string]any{"env": "dev"}, []string{"env not=test dev (dev)"}},
		{"not of one const", map[string]any{"lvl": 3}, []string{"lvl not=3 (3)"}},
		{"enum", map[string]any{"region": "mars"}, []string{"region enum=eu us (mars)"}},
		{"anyOf failing one rule everywhere", map[string]any{"ip": "x"}, []string{"ip format=ipv4|ipv6 (x)"}},
		{"anyOf failing different rules", map[string]any{"pick": "ab"}, []string{"pick anyOf= (ab)"}},
		{"oneOf matching several", map[string]any{"one": 1}, []string{"one oneOf= (1)"}},
		{"false schema", map[string]any{"never": 1}, []string{"never false= (1)"}},
		{"required, secret masked", map[string]any{"db": map[string]any{}},
			[]string{"db.host required= ()", "db.password required= (******)"}},
		{"additionalProperties masked", map[string]any{"db": map[string]any{"host": "h", "password": "p", "pasword": "Sekr1t"}},
			[]string{"db.pasword additionalProperties= (******)"}},
		{"propertyNames", map[string]any{"labels": map[string]any{"ok": 1, "Bad": 2}},
			[]string{"labels.Bad pattern=^[a-z]+$ (Bad)"}},
		// santhosh-tekuri/jsonschema#258: below the top, the validator
		// reports these at a wrong location; Check must not.
		{"propertyNames in list elements", map[string]any{"list": []any{
			map[string]any{"k1": 1}, map[string]any{"k2": 1, "bad": 2}, map[string]any{"x": 1, "k3": 2}}},
			[]string{"list.1.bad pattern=^k (bad)", "list.2.x pattern=^k (x)"}},
		{"propertyNames of map values", map[string]any{"nested": map[string]any{
			"a": map[string]any{"inner": map[string]any{"ok": 1}},
			"b": map[string]any{"inner": map[string]any{"long": 1}}}},
			[]string{"nested.b.inner.long maxLength=2 (long)"}},
		{"propertyNames, same key in two objects", map[string]any{"list": []any{
			map[string]any{"bad": 1}, map[string]any{"k": 1}, map[string]any{"bad": 2}}},
			[]string{"list.0.bad pattern=^k (bad)", "list.2.bad pattern=^k (bad)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The validator visits an object's members in map order: try
			// a few times, so a location it gets from the wrong object
			// shows.
			for range 20 {
				err := s.Check(tt.tree)
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("Check = %v, want a *ValidationError", err)
				}
				var got []string
				for _, f := range ve.Fields {
					got = append(got, f.Path+" "+f.Rule+"="+f.Param+" ("+f.Value+")")
				}
				if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
					t.Fatalf("Check fields:\n got %q\nwant %q", got, tt.want)
				}
			}
		})
	}
}
