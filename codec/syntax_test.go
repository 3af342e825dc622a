package codec_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strataconf/strata/codec"
)

func TestSyntaxErrorLines(t *testing.T) {
	tests := []struct {
		name   string
		c      codec.Codec
		in     string
		line   int
		column int // 0: not checked
		msg    string
	}{
		{"yaml bad indent line 3", codec.YAML, "a:\n  b: 1\n c: 2\n", 3, 0,
			"yaml: line 3: did not find expected key"},
		{"yaml bad indent line 4", codec.YAML, "a: 1\nb:\n  c: 2\n d: 3\n", 4, 0,
			"yaml: line 4: did not find expected key"},
		{"yaml sequence in mapping", codec.YAML, "a: 1\n- b\n", 2, 0,
			"yaml: line 2: did not find expected key"},
		{"yaml unclosed flow sequence", codec.YAML, "a: 1\nb: 2\nc: [1, 2\n", 3, 0,
			"yaml: line 3: did not find expected ',' or ']'"},
		{"yaml unclosed flow mapping", codec.YAML, "a: 1\nb: {c: 1\nd: 2\n", 2, 0,
			"yaml: line 2: did not find expected ',' or '}'"},
		{"yaml bad character", codec.YAML, "a: 1\nb: @x\n", 2, 0,
			"yaml: line 2: found character that cannot start any token"},
		{"yaml mapping value", codec.YAML, "a: 1\n  b: 2\n", 2, 0,
			"yaml: line 2: mapping values are not allowed in this context"},
		{"yaml duplicate key", codec.YAML, "a: 1\nb: 2\na: 3\n", 3, 0,
			`yaml: line 3: mapping key "a" already defined at line 1`},
		{"yaml unknown anchor has no line", codec.YAML, "a: 1\nb: *x\n", 0, 0,
			"yaml: unknown anchor 'x' referenced"},
		{"json missing comma", codec.JSON, "{\n  \"a\": 1 \"b\": 2\n}\n", 2, 10,
			`json: line 2: invalid character '"' after object key:value pair`},
		{"json bad literal", codec.JSON, "{\n  \"a\": 1,\n  \"b\": tru\n}\n", 3, 11,
			"json: line 3: invalid character '\\n' in literal true (expecting 'e')"},
		{"json trailing comma", codec.JSON, "{\n  \"a\": [1, 2,]\n}", 2, 14,
			"json: line 2: invalid character ']' looking for beginning of value"},
		{"json truncated", codec.JSON, "{\n  \"a\": [1,\n  2", 3, 3,
			"json: line 3: unexpected end of JSON input"},
		{"toml bad value line 4", codec.TOML, "a = 1\nb = 2\n[c]\nd = = 3\n", 4, 5,
			"toml: line 4: incomplete number"},
		{"toml unterminated string", codec.TOML, "a = 1\n\n\nb = \"x\n", 4, 0, ""},
		{"toml bad table header", codec.TOML, "a = 1\n[b\nc = 2\n", 2, 0, ""},
		{"toml duplicate key has no line", codec.TOML, "a = 1\na = 2\n", 0, 0,
			"toml: key a is already defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Unmarshal([]byte(tt.in))
			var se *codec.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			if se.Line != tt.line {
				t.Errorf("Line = %d, want %d (%v)", se.Line, tt.line, se)
			}
			if tt.column != 0 && se.Column != tt.column {
				t.Errorf("Column = %d, want %d (%v)", se.Column, tt.column, se)
			}
			if tt.msg != "" && se.Error() != tt.msg {
				t.Errorf("Error() = %q, want %q", se.Error(), tt.msg)
			}
			if want := se.Format + ": "; !strings.HasPrefix(se.Error(), want) {
				t.Errorf("Error() = %q, want prefix %q", se.Error(), want)
			}
			if se.Unwrap() == nil {
				t.Error("Unwrap() = nil, want the parser's error")
			}
		})
	}
}

func TestSyntaxErrorFormat(t *testing.T) {
	tests := []struct {
		err  *codec.SyntaxError
		want string
	}{
		{&codec.SyntaxError{Format: "yaml", Line: 3, Err: errors.New("yaml: line 3: bad")}, "yaml: line 3: bad"},
		{&codec.SyntaxError{Format: "yaml", Err: errors.New("yaml: control characters are not allowed")}, "yaml: control characters are not allowed"},
		{&codec.SyntaxError{Format: "json", Line: 2, Column: 4, Err: errors.New("oops")}, "json: line 2: oops"},
		{&codec.SyntaxError{Format: "toml"}, "toml: syntax error"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

// JSON refuses a key given twice in one object, as YAML and TOML do,
// naming the key's path and line.
func TestJSONDuplicateKeys(t *testing.T) {
	for doc, want := range map[string]string{
		`{"a": 1, "a": 2}`: "json: line 1: duplicate key a",
		"{\"db\": {\"host\": \"x\",\n \"host\": \"y\"}}": "json: line 2: duplicate key db.host",
		`{"l": [{"k": 1}, {"k": 2, "k": 3}]}`:            "json: line 1: duplicate key l.1.k",
	} {
		_, err := codec.JSON.Unmarshal([]byte(doc))
		var se *codec.SyntaxError
		if !errors.As(err, &se) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: %v, want %q", doc, err, want)
		}
	}
	for _, doc := range []string{`{"a": {"k": 1}, "b": {"k": 1}}`, `{"l": [{"k": 1}, {"k": 2}]}`, `{"a": 1, "A": 2}`} {
		if _, err := codec.JSON.Unmarshal([]byte(doc)); err != nil {
			t.Errorf("%s: %v", doc, err)
		}
	}
}
