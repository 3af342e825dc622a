package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"go.yaml.in/yaml/v3"
)

// SyntaxError is a malformed document: one its parser rejects, or one whose
// top level is not a mapping.
type SyntaxError struct {
	Format string // "json", "yaml" or "toml"
	Line   int    // 1-based; 0 if the parser gives none
	Column int    // 1-based byte column; 0 if the parser gives none
	Err    error  // the parser's error
}

// Error returns the format, the line when known, and the parser's message,
// as in "yaml: line 3: did not find expected key".
func (e *SyntaxError) Error() string {
	var b strings.Builder
	b.WriteString(e.Format)
	b.WriteString(": ")
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(": ")
	}
	b.WriteString(e.message())
	return b.String()
}

// Unwrap returns the parser's error.
func (e *SyntaxError) Unwrap() error { return e.Err }

var leadingLine = regexp.MustCompile(`^line \d+: `)

// message is the parser's message without what Error already says.
func (e *SyntaxError) message() string {
	if e.Err == nil {
		return "syntax error"
	}
	msg := strings.TrimPrefix(e.Err.Error(), e.Format+": ")
	if rest, ok := strings.CutPrefix(msg, "unmarshal errors:\n  "); ok { // yaml.TypeError
		msg = strings.ReplaceAll(rest, "\n  ", "; ")
	}
	if e.Line > 0 {
		msg = leadingLine.ReplaceAllString(msg, "")
	}
	return msg
}

var yamlLineRe = regexp.MustCompile(`\bline (\d+)\b`)

// yamlParserProblems are the messages of go.yaml.in/yaml/v3's parser (as
// opposed to its scanner and decoder). For these it reports a 0-based line,
// the line of the enclosing construct if that is not the first, else the
// line of the problem; line 0 it leaves out.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlLine is the 1-based line a yaml error names, or 0.
func yamlLine(err error) int {
	msg := err.Error()
	n := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		n, _ = strconv.Atoi(m[1])
	}
	var ye *yaml.TypeError
	if errors.As(err, &ye) {
		return n
	}
	for _, p := range yamlParserProblems {
		if strings.HasSuffix(msg, ": "+p) {
			return n + 1
		}
	}
	return n
}

// jsonError turns an encoding/json error for document b into a *SyntaxError.
func jsonError(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(b, int(se.Offset)-1)
		return &SyntaxError{Format: "json", Line: line, Column: col, Err: err}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		// Decoding into map[string]any fails with a type error only when
		// the top level is not an object.
		var v any
		if json.Unmarshal(b, &v) == nil {
			first := len(b) - len(bytes.TrimLeft(b, " \t\r\n"))
			line, _ := position(b, first)
			return topLevelError("json", line, v)
		}
	}
	return &SyntaxError{Format: "json", Err: err}
}

// position returns the 1-based line and byte column of b[i]; i is clamped
// to the document.
func position(b []byte, i int) (line, col int) {
	i = max(0, min(i, len(b)))
	before := b[:i]
	nl := bytes.LastIndexByte(before, '\n')
	return bytes.Count(before, []byte{'\n'}) + 1, i - nl
}

// tomlError turns a go-toml error into a *SyntaxError.
func tomlError(err error) error {
	se := &SyntaxError{Format: "toml", Err: err}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		se.Line, se.Column = de.Position()
	}
	return se
}

func topLevelError(format string, line int, v any) error {
	return &SyntaxError{Format: format, Line: line,
		Err: fmt.Errorf("top level must be a mapping, got %s", kindOf(v))}
}

// kindOf names the shape of a parsed value for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any, map[any]any:
		return "mapping"
	case []any:
		return "sequence"
	case string:
		return "string"
	case bool:
		return "bool"
	case int, int64, uint64, float64:
		return "number"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// normalise copies a parsed tree so that every mapping is a map[string]any
// (non-string keys become their fmt.Sprint text) and every sequence is a
// []any. A nil top level gives an empty map.
func normalise(format string, top any) (map[string]any, error) {
	v, err := normaliseValue(top)
	if err != nil {
		return nil, &SyntaxError{Format: format, Err: err}
	}
	m, ok := v.(map[string]any)
	if !ok {
		if v == nil {
			return map[string]any{}, nil
		}
		return nil, topLevelError(format, 0, v)
	}
	return m, nil
}

func normaliseValue(v any) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return nil, nil
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			n, err := normaliseValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			key := fmt.Sprint(k)
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("mapping key %q appears twice once keys are text", key)
			}
			n, err := normaliseValue(e)
			if err != nil {
				return nil, err
			}
			out[key] = n
		}
		return out, nil
	case []any:
		if v == nil {
			return nil, nil
		}
		out := make([]any, len(v))
		for i, e := range v {
			n, err := normaliseValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	default:
		return v, nil
	}
}
