package schema

import (
	"reflect"
	"testing"
)

const maskSchema = `{
  "$defs": {"pw": {"type": "string", "writeOnly": true}},
  "type": "object",
  "properties": {
    "db": {"type": "object", "additionalProperties": false,
      "properties": {"host": {"type": "string"}, "password": {"$ref": "#/$defs/pw"}}},
    "users": {"type": "object", "additionalProperties": {"type": "object", "properties": {"token": {"x-secret": true}}}},
    "keys": {"type": "array", "items": {"type": "string", "x-secret": true}},
    "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"x-secret": false, "writeOnly": true}]},
    "creds": {"type": "object", "x-secret": true},
    "open": {"type": "object"}
  }
}`

// TestFieldErrorMasking: a failure's value is shown only when nothing at or
// below its path is secret or unknown to the schema; below a shown value,
// secret and unknown members are masked one by one.
func TestFieldErrorMasking(t *testing.T) {
	s := mustCompile(t, maskSchema)
	tests := []struct {
		name       string
		loc        []string
		v          any
		wantValue  string
		wantSecret bool
	}{
		{"secret through $ref", []string{"db", "password"}, "Sekr1t", Masked, true},
		{"below a secret", []string{"creds", "user"}, "Sekr1t", Masked, true},
		{"secret object", []string{"creds"}, map[string]any{"user": "Sekr1t"}, Masked, true},
		{"map value's secret", []string{"users", "alice", "token"}, "Sekr1t", Masked, true},
		{"list element secret", []string{"keys", "3"}, "Sekr1t", Masked, true},
		{"prefixItems secret", []string{"pair", "1"}, "Sekr1t", Masked, true},
		{"unknown key (a mistyped secret)", []string{"db", "pasword"}, "Sekr1t", Masked, true},
		{"below an unknown key", []string{"db", "pasword", "x"}, "Sekr1t", Masked, true},
		{"plain value", []string{"db", "host"}, "h", "h", false},
		{"key of an open object", []string{"open", "free"}, "visible", "visible", false},
		{"members masked in a shown object", []string{"db"},
			map[string]any{"host": "h", "password": "Sekr1t", "pasword": "Sekr1t"},
			"map[host:h password:****** pasword:******]", false},
		{"elements masked in a shown list", []string{"pair"}, []any{"a", "Sekr1t"}, "[a ******]", false},
		{"undescribed members of an open object masked", []string{"open"},
			map[string]any{"free": "visible", "deep": map[string]any{"x": "y"}}, "map[deep:****** free:******]", false},
		{"undescribed members of list elements masked", []string{"keys"}, []any{"Sekr1t"}, "[******]", false},
		{"deeper members masked", []string{"users"},
			map[string]any{"alice": map[string]any{"token": "Sekr1t", "name": "Alice"}},
			"map[alice:map[name:****** token:******]]", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := s.fieldError(tt.loc, "rule", "param", tt.v)
			want := FieldError{Path: joinTokens(tt.loc), Rule: "rule", Param: "param", Value: tt.wantValue, Secret: tt.wantSecret}
			if !reflect.DeepEqual(f, want) {
				t.Errorf("fieldError = %+v, want %+v", f, want)
			}
		})
	}
}

// TestSecretAndUnknownAt tells the two reasons to hide a value apart.
func TestSecretAndUnknownAt(t *testing.T) {
	s := mustCompile(t, maskSchema)
	tests := []struct {
		loc                  []string
		wantSecret, wantUnkn bool
	}{
		{nil, false, false},
		{[]string{"db"}, false, false},
		{[]string{"db", "password"}, true, false},
		{[]string{"db", "pasword"}, false, true},
		{[]string{"users", "bob"}, false, false},
		{[]string{"users", "bob", "token", "x"}, true, false},
		{[]string{"keys"}, false, false},
		{[]string{"keys", "0"}, true, false},
		{[]string{"pair", "0"}, false, false},
		{[]string{"zzz"}, false, false}, // the root is open
	}
	for _, tt := range tests {
		if got := s.secretAt(tt.loc); got != tt.wantSecret {
			t.Errorf("secretAt(%q) = %v, want %v", tt.loc, got, tt.wantSecret)
		}
		if got := s.unknownAt(tt.loc); got != tt.wantUnkn {
			t.Errorf("unknownAt(%q) = %v, want %v", tt.loc, got, tt.wantUnkn)
		}
	}
	want := []string{"creds", "db.password", "keys.*", "pair.1", "users.*.token"}
	if got := s.SecretPaths(); !reflect.DeepEqual(got, want) {
		t.Errorf("SecretPaths() = %q, want %q", got, want)
	}
}
