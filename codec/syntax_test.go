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
		{"yaml unknown anchor", codec.YAML, "a: 1\nb: *x\n", 2, 4,
			"yaml: line 2: unknown anchor referenced (a value that starts with * is an alias: quote it)"},
		{"json missing comma", codec.JSON, "{\n  \"a\": 1 \"b\": 2\n}\n", 2, 10,
			"json: line 2: invalid character after object key:value pair"},
		{"json bad literal", codec.JSON, "{\n  \"a\": 1,\n  \"b\": tru\n}\n", 3, 11,
			"json: line 3: invalid character in literal true"},
		{"json trailing comma", codec.JSON, "{\n  \"a\": [1, 2,]\n}", 2, 14,
			"json: line 2: invalid character looking for beginning of value"},
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

// A parse error never quotes the document, which may hold a secret
// anywhere: not a value, an anchor name, a character of a string or a
// number. It keeps the format, the line (and column) and the kind of error.
func TestSyntaxErrorsQuoteNoInput(t *testing.T) {
	const secret = "hunter2secret"
	tests := []struct {
		name   string
		c      codec.Codec
		in     string
		hidden string // what the parser's own message quotes
		line   int
		kind   string
	}{
		{"yaml unknown anchor", codec.YAML, "a: 1\ntoken: *" + secret + "\n", secret, 2, "unknown anchor"},
		{"yaml anchor in itself", codec.YAML, "a: 1\ntoken: &" + secret + " [*" + secret + "]\n", secret, 2, "contains itself"},
		{"yaml explicit tag", codec.YAML, "a: 1\ntoken: !!int " + secret + "\n", secret, 2, "cannot decode !!str as a !!int"},
		{"yaml timestamp tag", codec.YAML, "a:\n  token: !!timestamp " + secret + "\n", secret, 2, "cannot decode"},
		{"yaml inexact number", codec.YAML, "a: 1\npin: 123456789012345678901234567890\n", "123456789012345678901234567890", 2, "cannot be kept exactly"},
		{"json bare word", codec.JSON, "{\"a\": 1,\n\"token\": " + secret + "}", "'h'", 2, "invalid character looking for beginning of value"},
		{"json escape", codec.JSON, "{\"token\": \"" + secret + "\\q\"}", "'q'", 1, "invalid character in string escape code"},
		{"json literal", codec.JSON, "{\"token\": trhunter}", "'h'", 1, "invalid character in literal true"},
		{"json inexact number", codec.JSON, `{"pin": 123456789012345678901234567890}`, "123456789012345678901234567890", 0, "pin: number cannot be kept exactly"},
		{"toml escape", codec.TOML, "a = 1\ntoken = \"" + secret + "\\q\"\n", "'q'", 2, "invalid escaped character"},
		{"toml trailing text", codec.TOML, "token = 1" + secret + "\n", "'h'", 1, "expected newline"},
		{"toml number out of range", codec.TOML, "pin = 99999999999999999999999\n", "99999999999999999999999", 1, "couldn't parse decimal number: value out of range"},
		{"toml float out of range", codec.TOML, "pin = 1e99999\n", "1e99999", 1, "unable to parse float: value out of range"},
		{"toml key start", codec.TOML, "[a]\n%" + secret + " = 1\n", "%", 2, "invalid character at start of key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Unmarshal([]byte(tt.in))
			var se *codec.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			for e := error(se); e != nil; e = errors.Unwrap(e) {
				if msg := e.Error(); strings.Contains(msg, tt.hidden) || strings.Contains(msg, secret) || strings.Contains(msg, "hunter") {
					t.Fatalf("%T quotes the document: %q", e, msg)
				}
			}
			if se.Line != tt.line || !strings.Contains(err.Error(), tt.kind) || !strings.HasPrefix(err.Error(), se.Format+": ") {
				t.Errorf("error %q (line %d), want line %d and %q", err, se.Line, tt.line, tt.kind)
			}
		})
	}
	// Keys are not values: a key given twice is named, as paths are
	// everywhere.
	for _, tt := range []struct {
		c       codec.Codec
		in, key string
	}{
		{codec.YAML, "a: 1\nb: 2\na: 3\n", `"a"`},
		{codec.JSON, `{"db": {"host": 1, "host": 2}}`, "db.host"},
		{codec.TOML, "a = 1\na = 2\n", "key a"},
	} {
		if _, err := tt.c.Unmarshal([]byte(tt.in)); err == nil || !strings.Contains(err.Error(), tt.key) {
			t.Errorf("%q: %v, want it to name %s", tt.in, err, tt.key)
		}
	}
}
