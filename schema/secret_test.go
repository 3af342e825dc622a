package schema_test

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/strataconf/strata/schema"
)

// nestedSecretsSchema reaches secrets through every construct that can
// describe a value.
const nestedSecretsSchema = `{
  "$defs": {"pw": {"type": "string", "writeOnly": true, "minLength": 8}},
  "type": "object",
  "properties": {
    "users": {"type": "object", "additionalProperties": {
      "type": "object", "properties": {"name": {"type": "string"}, "password": {"$ref": "#/$defs/pw"}}}},
    "creds": {"type": "array", "items": {"type": "object", "properties": {"token": {"type": "string", "x-secret": true}}}},
    "pair": {"type": "array", "maxItems": 2, "prefixItems": [{"type": "string"}, {"type": "string", "x-secret": true}]},
    "api": {"allOf": [{"properties": {"key": {"type": "string", "x-secret": true, "minLength": 4}}}]},
    "auth": {"oneOf": [{"type": "object", "properties": {"password": {"x-secret": true}}}, {"type": "boolean"}]},
    "alt": {"anyOf": [{"type": "object", "properties": {"pin": {"type": "string", "writeOnly": true, "pattern": "^[0-9]+$"}}}]},
    "hooks": {"type": "object", "patternProperties": {"^x-": {"properties": {"secret": {"x-secret": true, "minLength": 8}}}}},
    "cond": {"if": {"type": "object"}, "then": {"properties": {"t": {"x-secret": true}}}, "else": {"properties": {"e": {"x-secret": true}}}},
    "plain": {"type": "object", "properties": {"host": {"type": "string"}}}
  }
}`

func TestSecretPathsThroughEveryConstruct(t *testing.T) {
	s, err := schema.Compile([]byte(nestedSecretsSchema))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alt.pin", "api.key", "auth.password", "cond.e", "cond.t", "creds.*.token", "hooks.*.secret", "pair.1", "users.*.password"}
	if got := s.SecretPaths(); !slices.Equal(got, want) {
		t.Errorf("SecretPaths() = %q, want %q", got, want)
	}
}

func TestCheckMasksNestedSecrets(t *testing.T) {
	s, err := schema.Compile([]byte(nestedSecretsSchema))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tree map[string]any
		path string
	}{
		{"map value", map[string]any{"users": map[string]any{"alice": map[string]any{"password": "Sekr1t"}}}, "users.alice.password"},
		{"allOf", map[string]any{"api": map[string]any{"key": "Sek"}}, "api.key"},
		{"anyOf", map[string]any{"alt": map[string]any{"pin": "Sekr1t"}}, "alt.pin"},
		{"patternProperties", map[string]any{"hooks": map[string]any{"x-ci": map[string]any{"secret": "Sekr1t"}}}, "hooks.x-ci.secret"},
		{"secret inside a shown value", map[string]any{"pair": []any{"a", "Sekr1t", 3}}, "pair"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(tt.tree)
			if err == nil {
				t.Fatal("Check passed")
			}
			if strings.Contains(err.Error(), "Sekr") {
				t.Errorf("secret in error text: %v", err)
			}
			if !strings.Contains(err.Error(), tt.path+":") {
				t.Errorf("want a failure at %s, got %v", tt.path, err)
			}
		})
	}
}

func TestIsSecretWildcard(t *testing.T) {
	paths := []string{"db.password", "users.*.password", "creds.*.token", "pair.1"}
	tests := []struct {
		path string
		want bool
	}{
		{"db.password", true},
		{"users.alice.password", true},
		{"users.alice.password.x", true},
		{"users[alice].password", true},
		{"users.alice.name", false},
		{"users.alice", true}, // may hold the user as JSON text
		{"users", true},       // holds the whole map, secrets included (JSON text)
		{"creds.0.token", true},
		{"creds[0].token", true},
		{"creds", true},
		{"creds.0.name", false},
		{"pair.1", true},
		{"pair", false},
		{"db", false},
		{"usersx.alice.password", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := schema.IsSecret(paths, tt.path); got != tt.want {
			t.Errorf("IsSecret(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestMaskTree(t *testing.T) {
	paths := []string{"db.password", "users.*.password", "creds.*.token", "tokens"}
	tree := map[string]any{
		"db":     map[string]any{"host": "h", "password": "p1"},
		"users":  map[string]any{"alice": map[string]any{"name": "A", "password": "p2"}},
		"creds":  []any{map[string]any{"name": "ci", "token": "p3"}, "odd"},
		"tokens": map[string]any{"a": "p4"},
		"other":  `[{"token":"x"}]`,
	}
	got := schema.MaskTree(tree, paths)
	want := map[string]any{
		"db":     map[string]any{"host": "h", "password": schema.Masked},
		"users":  map[string]any{"alice": map[string]any{"name": "A", "password": schema.Masked}},
		"creds":  []any{map[string]any{"name": "ci", "token": schema.Masked}, "odd"},
		"tokens": schema.Masked,
		"other":  `[{"token":"x"}]`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MaskTree = %v\nwant %v", got, want)
	}
	if tree["db"].(map[string]any)["password"] != "p1" {
		t.Error("MaskTree modified its input")
	}
	// A list held as JSON text is masked whole.
	if got := schema.MaskTree(map[string]any{"creds": `[{"token":"p"}]`}, paths); got["creds"] != schema.Masked {
		t.Errorf("JSON text list: %v", got)
	}
}

func TestKeepMasked(t *testing.T) {
	paths := []string{"db.password", "users.*.password", "creds.*.token"}
	doc := map[string]any{
		"db":    map[string]any{"password": schema.Masked},
		"users": map[string]any{"alice": map[string]any{"password": schema.Masked, "name": "A"}},
		"creds": []any{map[string]any{"token": schema.Masked}},
		"note":  schema.Masked, // not a secret path: literal text
	}
	if got := schema.MaskedPaths(doc, paths); !slices.Equal(got, []string{"creds.0.token", "db.password", "users.alice.password"}) {
		t.Errorf("MaskedPaths = %q", got)
	}
	cur := map[string]any{
		"db":    map[string]any{"password": "p1"},
		"users": map[string]any{"alice": map[string]any{"password": "p2"}},
		"creds": `[{"token":"p3"}]`, // a list leaf holds JSON text
	}
	got, err := schema.KeepMasked(doc, cur, paths)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"db":    map[string]any{"password": "p1"},
		"users": map[string]any{"alice": map[string]any{"password": "p2", "name": "A"}},
		"creds": []any{map[string]any{"token": "p3"}},
		"note":  schema.Masked,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("KeepMasked = %v\nwant %v", got, want)
	}
	if doc["db"].(map[string]any)["password"] != schema.Masked {
		t.Error("KeepMasked modified its input")
	}
	delete(cur["users"].(map[string]any), "alice")
	_, err = schema.KeepMasked(doc, cur, paths)
	if err == nil || !strings.HasPrefix(err.Error(), `users.alice.password: "******" stands for the current secret value, but there is none`) {
		t.Errorf("KeepMasked without a current value: %v", err)
	}
}

type secretUser struct {
	Name     string `koanf:"name"`
	Password string `koanf:"password" secret:"true"`
}

type secretCred struct {
	Token string `koanf:"token" secret:"true"`
}

type withSecretElems struct {
	Users  map[string]secretUser        `koanf:"users"`
	Creds  []*secretCred                `koanf:"creds"`
	Groups map[string][]secretUser      `koanf:"groups"`
	Plain  map[string]string            `koanf:"plain"`
	Fixed  [2]secretCred                `koanf:"fixed"`
	Nested map[string]map[string]string `koanf:"nested"`
}

// The struct's secret paths and those of its generated schema agree,
// elements of maps and lists included.
func TestSecretPathsOfElements(t *testing.T) {
	typ := reflect.TypeFor[withSecretElems]()
	want := []string{"users.*.password", "creds.*.token", "groups.*.*.password", "fixed.*.token"}
	if got := schema.SecretPaths(typ); !slices.Equal(got, want) {
		t.Errorf("SecretPaths = %q, want %q", got, want)
	}
	doc, err := schema.Generate(typ)
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	want = slices.Sorted(slices.Values(want))
	if got := s.SecretPaths(); !slices.Equal(got, want) {
		t.Errorf("Schema.SecretPaths = %q, want %q", got, want)
	}
}
