package codec_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/strataconf/strata/codec"
)

func TestForPath(t *testing.T) {
	tests := []struct {
		name string
		want codec.Codec
		ok   bool
	}{
		{"app.json", codec.JSON, true},
		{"/etc/app/app.YAML", codec.YAML, true},
		{"P/data/db.yml", codec.YAML, true},
		{"x.Toml", codec.TOML, true},
		{"app.ini", nil, false},
		{"yaml", nil, false},
		{"app.yaml.bak", nil, false},
		{"", nil, false},
	}
	for _, tt := range tests {
		got, ok := codec.ForPath(tt.name)
		if ok != tt.ok || got != tt.want {
			t.Errorf("ForPath(%q) = %v, %v; want %v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	want := []string{".json", ".toml", ".yaml", ".yml"}
	if got := codec.Extensions(); !slices.Equal(got, want) {
		t.Errorf("Extensions() = %v, want %v", got, want)
	}
	for _, ext := range codec.Extensions() {
		if _, ok := codec.ForPath("a" + ext); !ok {
			t.Errorf("ForPath does not know %s", ext)
		}
	}
}

var codecs = []struct {
	name string
	c    codec.Codec
}{{"json", codec.JSON}, {"yaml", codec.YAML}, {"toml", codec.TOML}}

func TestUnmarshalEmpty(t *testing.T) {
	inputs := map[string][]string{
		"json": {"", " \n\t", "null"},
		"yaml": {"", "\n", "# only a comment\n", "~", "null\n", "---\n"},
		"toml": {"", "\n", "# only a comment\n"},
	}
	for _, c := range codecs {
		for _, in := range inputs[c.name] {
			m, err := c.c.Unmarshal([]byte(in))
			if err != nil || m == nil || len(m) != 0 {
				t.Errorf("%s.Unmarshal(%q) = %#v, %v; want empty map", c.name, in, m, err)
			}
		}
	}
}

func TestUnmarshalNormalises(t *testing.T) {
	tests := []struct {
		name string
		c    codec.Codec
		in   string
		want map[string]any
	}{
		{"yaml non-string keys", codec.YAML, "1: a\nb:\n  2: x\n  true: y\n  1.5: z\nc: [1, {3: w}]\n",
			map[string]any{"1": "a", "b": map[string]any{"2": "x", "true": "y", "1.5": "z"}, "c": []any{1, map[string]any{"3": "w"}}}},
		{"yaml nested", codec.YAML, "a:\n  b:\n    - c: 1\n",
			map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": 1}}}}},
		{"json", codec.JSON, `{"a": {"b": [1, "x", true, null]}}`,
			map[string]any{"a": map[string]any{"b": []any{int64(1), "x", true, nil}}}},
		{"toml", codec.TOML, "a = 1\n[b]\nc = [1, 2]\n[[d]]\ne = 'x'\n",
			map[string]any{"a": int64(1), "b": map[string]any{"c": []any{int64(1), int64(2)}}, "d": []any{map[string]any{"e": "x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.Unmarshal([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
			assertNormal(t, got)
		})
	}
}

// assertNormal fails unless every mapping in v is a map[string]any and
// every sequence a []any.
func assertNormal(t *testing.T, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			assertNormal(t, e)
		}
	case []any:
		for _, e := range v {
			assertNormal(t, e)
		}
	default:
		if k := reflect.ValueOf(v).Kind(); k == reflect.Map || k == reflect.Slice {
			t.Fatalf("not normalised: %T", v)
		}
	}
}

func TestUnmarshalTopLevelNotMapping(t *testing.T) {
	tests := []struct {
		c    codec.Codec
		in   string
		line int
		got  string
	}{
		{codec.JSON, "[1, 2]", 1, "sequence"},
		{codec.JSON, "\n\n\"x\"", 3, "string"},
		{codec.JSON, "42", 1, "number"},
		{codec.YAML, "- a\n- b\n", 1, "sequence"},
		{codec.YAML, "# c\nhello\n", 2, "string"},
	}
	for _, tt := range tests {
		_, err := tt.c.Unmarshal([]byte(tt.in))
		var se *codec.SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Unmarshal(%q): %v is not a *SyntaxError", tt.in, err)
			continue
		}
		if se.Line != tt.line || !strings.Contains(se.Error(), "top level must be a mapping, got "+tt.got) {
			t.Errorf("Unmarshal(%q) = %q (line %d); want line %d, got %s", tt.in, se, se.Line, tt.line, tt.got)
		}
	}
}

func TestUnmarshalKeyCollision(t *testing.T) {
	_, err := codec.YAML.Unmarshal([]byte("1: a\n'1': b\n"))
	var se *codec.SyntaxError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), `"1"`) {
		t.Fatalf("got %v, want a *SyntaxError naming key \"1\"", err)
	}
}

func TestMarshalExact(t *testing.T) {
	m := map[string]any{
		"name": "a&b<c>",
		"db":   map[string]any{"port": 5432, "hosts": []any{"x", "y"}},
		"on":   true,
	}
	tests := []struct {
		c    codec.Codec
		want string
	}{
		{codec.JSON, `{
  "db": {
    "hosts": [
      "x",
      "y"
    ],
    "port": 5432
  },
  "name": "a&b<c>",
  "on": true
}
`},
		{codec.YAML, `db:
  hosts:
    - x
    - "y"
  port: 5432
name: a&b<c>
"on": true
`},
		{codec.TOML, `name = 'a&b<c>'
on = true

[db]
hosts = ['x', 'y']
port = 5432
`},
	}
	for _, tt := range tests {
		got, err := tt.c.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("got\n%s\nwant\n%s", got, tt.want)
		}
	}
}

func TestMarshalNil(t *testing.T) {
	for _, c := range codecs {
		b, err := c.c.Marshal(nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m, err := c.c.Unmarshal(b)
		if err != nil || len(m) != 0 {
			t.Errorf("%s: Marshal(nil) = %q, reads back as %v, %v", c.name, b, m, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	docs := map[string]string{
		"json": `{"a": 1, "b": {"c": [1, 2.5, "x", true], "d": {"e": "f"}}, "g": [{"h": 1}, {"h": 2}], "s": "line1\nline2"}`,
		"yaml": "a: 1\nb:\n  c: [1, 2.5, x, true]\n  d: {e: f}\ng:\n  - h: 1\n  - h: 2\ns: \"line1\\nline2\"\n",
		"toml": "a = 1\ns = \"line1\\nline2\"\n[b]\nc = [1, 2.5, 'x', true]\n[b.d]\ne = 'f'\n[[g]]\nh = 1\n[[g]]\nh = 2\n",
	}
	var canon []string
	for _, c := range codecs {
		m, err := c.c.Unmarshal([]byte(docs[c.name]))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, err := c.c.Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		m2, err := c.c.Unmarshal(b)
		if err != nil {
			t.Fatalf("%s: reading back %q: %v", c.name, b, err)
		}
		if !reflect.DeepEqual(m, m2) {
			t.Errorf("%s: round trip changed\n%#v\nto\n%#v", c.name, m, m2)
		}
		b2, err := c.c.Marshal(m2)
		if err != nil || string(b) != string(b2) {
			t.Errorf("%s: Marshal not deterministic: %q vs %q (%v)", c.name, b, b2, err)
		}
		// All three documents hold the same tree.
		j, err := codec.JSON.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		canon = append(canon, string(j))
	}
	if canon[0] != canon[1] || canon[1] != canon[2] {
		t.Errorf("formats disagree:\n%s", strings.Join(canon, "\n"))
	}
}
