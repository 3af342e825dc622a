package schema

import (
	"reflect"
	"slices"
	"testing"
)

const navigateSchema = `{
  "$defs": {
    "a/b~c": {"type": "integer", "title": "escaped"},
    "a b": {"type": "string", "title": "spaced"},
    "r1": {"$ref": "#/$defs/r2"},
    "r2": {"type": ["integer", "null"], "title": "r2"},
    "typedRef": {"$ref": "#/$defs/r2", "type": "string", "title": "typedRef"},
    "loop": {"$ref": "#/$defs/loop"},
    "a b": {"type": "string", "title": "spaced"}
  },
  "type": "object",
  "properties": {
    "list": {"type": "array", "prefixItems": [{"title": "first"}], "items": {"title": "rest"}},
    "bare": {"type": "array", "prefixItems": [{"title": "only"}]},
    "obj": {"$ref": "#/$defs/r1"},
    "map": {"type": "object", "properties": {"k": {"title": "named"}, "a/b": {"title": "slash"}}, "additionalProperties": {"title": "other"}},
    "closed": {"type": "object", "properties": {"k": {"title": "named"}}, "additionalProperties": false}
  }
}`

// title names a schema node in the tests.
func title(v any) string {
	t, _ := asObj(v)["title"].(string)
	return t
}

func TestPointer(t *testing.T) {
	s := mustCompile(t, navigateSchema)
	tests := []struct {
		ptr  string
		want string // title of the node found, "" for none
	}{
		{"/$defs/a~1b~0c", "escaped"},
		{"/$defs/a%20b", "spaced"},
		{"/properties/list/prefixItems/0", "first"},
		{"/properties/list/prefixItems/1", ""},
		{"/properties/list/prefixItems/-1", ""},
		{"/properties/nothing", ""},
		{"anchor", ""},
	}
	for _, tt := range tests {
		if got := title(s.pointer(tt.ptr)); got != tt.want {
			t.Errorf("pointer(%q) = %q, want %q", tt.ptr, got, tt.want)
		}
	}
	if s.pointer("") == nil || !sameObj(asObj(s.pointer("")), asObj(s.doc)) {
		t.Error(`pointer("") is not the document`)
	}
	// A schema URL's fragment is URL-escaped; lookup takes it unescaped.
	frag, ok := fragment("strata:///schema.json#/$defs/a%20b")
	if !ok || frag != "/$defs/a b" || title(s.lookup(frag)) != "spaced" {
		t.Errorf("fragment = %q, %v; lookup = %q", frag, ok, title(s.lookup(frag)))
	}
	if _, ok := fragment("strata:///schema.json"); ok {
		t.Error("fragment of a URL without one")
	}
	for _, tok := range []string{"a/b~c", "~1", "/~0/", ""} {
		if got := unescapeToken(escapeToken(tok)); got != tok {
			t.Errorf("unescapeToken(escapeToken(%q)) = %q", tok, got)
		}
	}
}

func TestResolve(t *testing.T) {
	s := mustCompile(t, navigateSchema)
	tests := []struct {
		name      string
		node      any
		wantTitle string
		wantPtr   string
	}{
		{"two $refs", map[string]any{"$ref": "#/$defs/r1"}, "r2", "/$defs/r2"},
		{"a typed node's $ref is not followed", s.pointer("/$defs/typedRef"), "typedRef", "/start"},
		{"no $ref", s.pointer("/$defs/r2"), "r2", "/start"},
		{"dangling $ref", map[string]any{"$ref": "#/$defs/none"}, "", "/$defs/none"},
		{"a $ref cycle ends", map[string]any{"$ref": "#/$defs/loop"}, "", "/$defs/loop"},
		{"a %-escaped $ref", map[string]any{"$ref": "#/$defs/a%20b"}, "spaced", "/$defs/a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ptr := s.resolve(tt.node, "/start")
			if title(m) != tt.wantTitle || ptr != tt.wantPtr {
				t.Errorf("resolve = %q at %q, want %q at %q", title(m), ptr, tt.wantTitle, tt.wantPtr)
			}
			if d := s.deref(tt.node); !reflect.DeepEqual(d, m) {
				t.Errorf("deref = %v, resolve = %v", d, m)
			}
		})
	}
}

func TestSubSchemas(t *testing.T) {
	s := mustCompile(t, navigateSchema)
	props := func(name string) any { return s.pointer("/properties/" + name) }
	if got := s.types(props("obj")); !slices.Equal(got, []string{"integer", "null"}) {
		t.Errorf("types through $refs = %q", got)
	}
	if got := s.types(props("map")); !slices.Equal(got, []string{"object"}) {
		t.Errorf("types = %q", got)
	}
	if got := s.types(s.pointer("/properties/list/items")); got != nil {
		t.Errorf("types of an untyped node = %q", got)
	}
	propTests := []struct {
		node, key, want string
	}{
		{"map", "k", "named"},
		{"map", "z", "other"},
		{"closed", "k", "named"},
		{"closed", "z", ""},
		{"list", "k", ""},
	}
	for _, tt := range propTests {
		if got := title(s.propSchema(props(tt.node), tt.key)); got != tt.want {
			t.Errorf("propSchema(%s, %q) = %q, want %q", tt.node, tt.key, got, tt.want)
		}
	}
	itemTests := []struct {
		node  string
		index int
		want  string
	}{
		{"list", 0, "first"},
		{"list", 1, "rest"},
		{"list", 9, "rest"},
		{"bare", 0, "only"},
		{"bare", 1, ""},
		{"map", 0, ""},
	}
	for _, tt := range itemTests {
		if got := title(s.itemSchema(props(tt.node), tt.index)); got != tt.want {
			t.Errorf("itemSchema(%s, %d) = %q, want %q", tt.node, tt.index, got, tt.want)
		}
	}
	if sub, rel := propChild(asObj(props("map")), "a/b"); title(sub) != "slash" || rel != "/properties/a~1b" {
		t.Errorf("propChild = %q at %q", title(sub), rel)
	}
	if sub, rel := propChild(asObj(props("map")), "z"); title(sub) != "other" || rel != "/additionalProperties" {
		t.Errorf("propChild = %q at %q", title(sub), rel)
	}
	if sub, rel := itemChild(asObj(props("list")), 0); title(sub) != "first" || rel != "/prefixItems/0" {
		t.Errorf("itemChild = %q at %q", title(sub), rel)
	}
	if sub, rel := itemChild(asObj(props("list")), 3); title(sub) != "rest" || rel != "/items" {
		t.Errorf("itemChild = %q at %q", title(sub), rel)
	}
}

func TestValueAt(t *testing.T) {
	doc := map[string]any{"a": []any{map[string]any{"b": "x"}}, "c": "leaf"}
	tests := []struct {
		loc  []string
		want any
	}{
		{[]string{"a", "0", "b"}, "x"},
		{[]string{"a", "1"}, nil},
		{[]string{"a", "-1"}, nil},
		{[]string{"a", "x"}, nil},
		{[]string{"c", "d"}, nil},
		{[]string{"c"}, "leaf"},
	}
	for _, tt := range tests {
		if got := valueAt(doc, tt.loc); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("valueAt(%q) = %#v, want %#v", tt.loc, got, tt.want)
		}
	}
}
