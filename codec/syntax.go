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
//
// It never quotes the document: a document may hold a secret anywhere, and
// a parse error cannot know which of its values are secret. Where a parser
// quotes what it read (a value, an anchor name, a character, a number), Err
// keeps the parser's message with that fragment left out; the line, the
// column and the kind of error stay, and so do the keys a message names (a
// key given twice), as keys are shown wherever paths are.
type SyntaxError struct {
	Format string // "json", "yaml" or "toml"
	Line   int    // 1-based; 0 if the parser gives none
	Column int    // 1-based byte column; 0 if the parser gives none
	Err    error  // the reason: the parser's message without quoted input
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

// Unwrap returns the reason, Err.
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

// yamlError turns a go.yaml.in/yaml/v3 error for document b into a
// *SyntaxError. Where yaml gives no line (an alias that names no anchor, an
// anchor that contains itself, a value its explicit tag cannot decode), it
// is looked for in the document, since the message no longer quotes what
// yaml quoted.
func yamlError(b []byte, err error) error {
	se := &SyntaxError{Format: "yaml", Line: yamlLine(err), Err: parserError(err)}
	if se.Line != 0 {
		return se
	}
	if m := unknownAnchor.FindStringSubmatch(err.Error()); m != nil {
		se.Line, se.Column = aliasPosition(b, m[1])
		return se
	}
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) == nil {
		if n := badYAMLNode(&doc, nil, 0); n != nil {
			se.Line, se.Column = n.Line, n.Column
		}
	}
	return se
}

// badYAMLNode returns the first node beneath n, in document order, that
// fails to decode on its own: an alias inside the anchored node it names,
// or a scalar with an explicit tag its value does not fit ("!!int abc").
// up holds n's ancestors.
func badYAMLNode(n *yaml.Node, up []*yaml.Node, depth int) *yaml.Node {
	if n == nil || depth > 256 {
		return nil
	}
	switch n.Kind {
	case yaml.AliasNode:
		for _, a := range up {
			if a == n.Alias {
				return n
			}
		}
		return nil
	case yaml.ScalarNode:
		if n.Style&yaml.TaggedStyle != 0 {
			var v any
			if n.Decode(&v) != nil {
				return n
			}
		}
		return nil
	}
	up = append(up, n)
	for _, c := range n.Content {
		if bad := badYAMLNode(c, up, depth+1); bad != nil {
			return bad
		}
	}
	return nil
}

var unknownAnchor = regexp.MustCompile(`unknown anchor '(.*)' referenced`)

// aliasPosition returns the 1-based line and column of the first alias
// *name in b, or zeros.
func aliasPosition(b []byte, name string) (line, col int) {
	alias := []byte("*" + name)
	for from := 0; from < len(b); {
		i := bytes.Index(b[from:], alias)
		if i < 0 {
			break
		}
		i += from
		end := i + len(alias)
		before := i == 0 || bytes.IndexByte([]byte(" \t\r\n[{,"), b[i-1]) >= 0
		after := end == len(b) || bytes.IndexByte([]byte(" \t\r\n,]}"), b[end]) >= 0
		if before && after {
			return position(b, i)
		}
		from = i + 1
	}
	return 0, 0
}

// parserError is the reason of a *SyntaxError for a parser's error: its
// message with the fragments of the document it quotes left out.
func parserError(err error) error {
	return errors.New(redact(err.Error()))
}

// redactions rewrite the parser messages that quote the document (a value,
// an anchor name, a character of it) into the same message without the
// quoted text, in this order. They are the messages of go.yaml.in/yaml/v3,
// encoding/json and github.com/pelletier/go-toml/v2 that quote their input;
// what else a message quotes in "double quotes" or `backticks` is left out
// by quotedInput.
var redactions = []struct {
	re   *regexp.Regexp
	with string
}{
	// yaml
	{regexp.MustCompile(`unknown anchor '.*' referenced`), "unknown anchor referenced (a value that starts with * is an alias: quote it)"},
	{regexp.MustCompile(`anchor '.*' value contains itself`), "an anchor's value contains itself"},
	{regexp.MustCompile("cannot decode (\\S+) `[^`]*` as a "), "cannot decode $1 as a "},
	{regexp.MustCompile("cannot unmarshal (\\S+) `[^`]*` into "), "cannot unmarshal $1 into "},
	{regexp.MustCompile(`invalid map key: .*`), "invalid map key"},
	// toml: %#U of a character of the document, "U+0071 'q'"
	{regexp.MustCompile(`(?: but got)? U\+[0-9A-Fa-f]+ '(?:\\'|[^'])*'`), ""},
	{regexp.MustCompile(`invalid character at start of key: .*`), "invalid character at start of key"},
	{regexp.MustCompile(`strconv\.\w+: parsing "(?:[^"\\]|\\.)*": `), ""},
	// json
	{regexp.MustCompile(`invalid character '(?:\\'|[^'])*'`), "invalid character"},
	{regexp.MustCompile(` \(expecting '(?:\\'|[^'])*'\)`), ""},
	{regexp.MustCompile(`cannot unmarshal number \S+ into `), "cannot unmarshal number into "},
}

// quotedInput is any other fragment a parser quotes: "double-quoted" or
// `backticked` text.
var quotedInput = regexp.MustCompile("`[^`]*`|\"(?:[^\"\\\\]|\\\\.)*\"")

// keptMessages name keys, not values, and are kept whole: a key given
// twice (yaml's message quotes it).
var keptMessages = regexp.MustCompile(`^(?:yaml: )?(?:line \d+: )?mapping key ".*" already defined at line \d+$`)

// redact returns a parser's message without the text of the document it
// quotes, line by line (yaml lists several problems on lines of their own).
func redact(msg string) string {
	lines := strings.Split(msg, "\n")
	for i, l := range lines {
		if keptMessages.MatchString(strings.TrimSpace(l)) {
			continue
		}
		for _, r := range redactions {
			l = r.re.ReplaceAllString(l, r.with)
		}
		lines[i] = quotedInput.ReplaceAllString(l, "(text left out)")
	}
	return strings.Join(lines, "\n")
}

// jsonError turns an encoding/json error for document b into a *SyntaxError.
func jsonError(b []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := position(b, int(se.Offset)-1)
		return &SyntaxError{Format: "json", Line: line, Column: col, Err: parserError(err)}
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
	return &SyntaxError{Format: "json", Err: parserError(err)}
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
	se := &SyntaxError{Format: "toml", Err: parserError(err)}
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
