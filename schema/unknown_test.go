package schema_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strataconf/strata/schema"
)

const closedSchema = `{
  "type": "object",
  "properties": {
    "db": {"type": "object", "additionalProperties": false, "minProperties": 5,
      "properties": {"host": {"type": "string"}, "password": {"type": "string", "x-secret": true}}},
    "labels": {"type": "object", "additionalProperties": false, "patternProperties": {"^l-": {"type": "string"}}},
    "open": {"type": "object", "minProperties": 9}
  },
  "additionalProperties": false
}`

// A key the schema does not allow may be a mistyped secret: its value is
// never shown, in its own failure or inside a value shown for another.
func TestCheckHidesUnknownKeys(t *testing.T) {
	s, err := schema.Compile([]byte(closedSchema))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(map[string]any{
		"db":     map[string]any{"host": "h", "pasword": "hunter2"},
		"labels": map[string]any{"l-a": "shown", "x": "hunter3"},
		"nmae":   "hunter4",
		"open":   map[string]any{"free": "visible"},
	})
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Check = %v", err)
	}
	if text := err.Error(); strings.Contains(text, "hunter") {
		t.Errorf("a value at an unknown key is shown: %s", text)
	}
	want := map[string]string{
		"db.pasword:additionalProperties": schema.Masked,
		"labels.x:additionalProperties":   schema.Masked,
		"nmae:additionalProperties":       schema.Masked,
		"db:minProperties":                "map[host:h pasword:******]",
		"open:minProperties":              "map[free:******]",
	}
	for _, f := range ve.Fields {
		key := f.Path + ":" + f.Rule
		if w, ok := want[key]; ok {
			if f.Value != w {
				t.Errorf("%s: Value = %q, want %q", key, f.Value, w)
			}
			delete(want, key)
		}
	}
	for k := range want {
		t.Errorf("no failure %s in %v", k, err)
	}
}

func TestUnknown(t *testing.T) {
	s, err := schema.Compile([]byte(closedSchema))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"db.host":      false,
		"db.password":  false,
		"db.pasword":   true,
		"db.pasword.x": true,
		"labels.l-a":   false,
		"labels.x":     true,
		"nmae":         true,
		"open.free":    false,
		"open.free.x":  false,
		"":             false,
		"db":           false,
	} {
		if got := s.Unknown(path); got != want {
			t.Errorf("Unknown(%q) = %v, want %v", path, got, want)
		}
	}
}

// openSchema leaves its objects open: keys it does not name are allowed
// but not described, so a mistyped secret key passes additionalProperties.
const openSchema = `{
  "type": "object",
  "maxProperties": 3,
  "not": {"required": ["zz"]},
  "properties": {
    "db": {"type": "object", "maxProperties": 2,
      "properties": {"host": {"type": "string"}, "password": {"type": "string", "x-secret": true}}},
    "users": {"type": "array", "maxItems": 1,
      "items": {"type": "object", "properties": {"name": {"type": "string"}, "password": {"type": "string", "writeOnly": true}}}},
    "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}}
  }
}`

// A container whose rule fails (maxProperties, maxItems, not) is shown
// without the values at paths the schema does not describe: a key of an
// open object may be a mistyped secret.
func TestCheckHidesUndescribedKeys(t *testing.T) {
	s, err := schema.Compile([]byte(openSchema))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(map[string]any{
		"db":    map[string]any{"host": "h", "pasword": "hunter2", "port": "5432"},
		"users": []any{map[string]any{"name": "ann", "passwrod": "hunter3"}, map[string]any{"name": "bob"}},
		"tags":  []any{"a", "b"},
		"zz":    "hunter4",
	})
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Check = %v", err)
	}
	if text := err.Error(); strings.Contains(text, "hunter") {
		t.Errorf("a value at an undescribed key is shown: %s", text)
	}
	want := map[string]string{
		"db:maxProperties": "map[host:h pasword:****** port:******]",
		"users:maxItems":   "[map[name:ann passwrod:******] map[name:bob]]",
		"tags:maxItems":    "[a b]",
		":not":             "map[db:map[host:h pasword:****** port:******] tags:[a b] users:[map[name:ann passwrod:******] map[name:bob]] zz:******]",
		":maxProperties":   "map[db:map[host:h pasword:****** port:******] tags:[a b] users:[map[name:ann passwrod:******] map[name:bob]] zz:******]",
	}
	for _, f := range ve.Fields {
		key := f.Path + ":" + f.Rule
		if w, ok := want[key]; ok {
			if f.Value != w {
				t.Errorf("%s: Value = %q, want %q", key, f.Value, w)
			}
			delete(want, key)
		}
	}
	for k := range want {
		t.Errorf("no failure %s in %v", k, err)
	}
}
