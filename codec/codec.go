// Package codec turns configuration documents (JSON, YAML, TOML) into nested
// maps and back, and binds a nested tree of values onto a typed Go struct.
//
// A tree is a map[string]any whose inner mappings are map[string]any and
// whose sequences are []any. Its leaves are text (as written by `etcdctl put`
// or read from the environment), typed values from a parsed document, or Go
// values taken from a struct by ToMap. Bind accepts all three.
package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"strings"

	ktoml "github.com/knadh/koanf/parsers/toml/v2"
	kyaml "github.com/knadh/koanf/parsers/yaml"
	"go.yaml.in/yaml/v3"
)

// Codec converts between a document's bytes and a nested map.
//
// Unmarshal returns a normalised tree (see the package documentation); empty
// input gives an empty map. A malformed document, or one whose top level is
// not a mapping, gives an error that wraps a *SyntaxError. Numbers are kept
// exactly: integers are int64 (uint64 above the int64 range; YAML gives int
// where it fits), other numbers float64 only when that float is the very
// number written; a document holding any other number (9007199254740993.5,
// an integer beyond uint64) is refused with an error that names its path and
// wraps ErrInexactNumber and a *SyntaxError, rather than rounded. Marshal
// writes keys in sorted order, so equal maps give equal bytes.
type Codec interface {
	Unmarshal(b []byte) (map[string]any, error)
	Marshal(m map[string]any) ([]byte, error)
}

// The codecs of the supported formats. JSON output is indented by two
// spaces, YAML output by two spaces; both end with a newline.
var (
	JSON Codec = jsonCodec{}
	YAML Codec = yamlCodec{}
	TOML Codec = tomlCodec{}
)

var byExt = map[string]Codec{".json": JSON, ".toml": TOML, ".yaml": YAML, ".yml": YAML}

// ForPath returns the codec for a file name or key by its extension (.json,
// .yaml, .yml or .toml, in any case). ok is false for any other extension.
func ForPath(name string) (c Codec, ok bool) {
	c, ok = byExt[strings.ToLower(filepath.Ext(name))]
	return c, ok
}

// Extensions returns the extensions ForPath recognises, sorted:
// [".json", ".toml", ".yaml", ".yml"].
func Extensions() []string {
	return []string{".json", ".toml", ".yaml", ".yml"}
}

type jsonCodec struct{}

func (jsonCodec) Unmarshal(b []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return map[string]any{}, nil
	}
	m, err := jsonParser{}.Unmarshal(b)
	if err == nil {
		if path, offset, dup := jsonDuplicate(b); dup {
			return nil, duplicateError(b, path, offset)
		}
	}
	if errors.Is(err, ErrInexactNumber) {
		return nil, &SyntaxError{Format: "json", Err: err}
	}
	if err != nil {
		return nil, jsonError(b, err)
	}
	return normalise("json", m)
}

func (jsonCodec) Marshal(m map[string]any) ([]byte, error) {
	if m == nil {
		m = map[string]any{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return buf.Bytes(), nil
}

type yamlCodec struct{}

func (yamlCodec) Unmarshal(b []byte) (map[string]any, error) {
	m, err := kyaml.Parser().Unmarshal(b)
	if err == nil {
		if err := checkYAMLNumbers(b); err != nil {
			return nil, err
		}
		return normalise("yaml", m)
	}
	// A top level that is not a string-keyed mapping fails to decode into
	// map[string]any; decode it generically to tell why.
	var v any
	if yaml.Unmarshal(b, &v) != nil {
		return nil, yamlError(b, err)
	}
	switch v := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return normalise("yaml", v)
	case map[any]any:
		return normalise("yaml", v)
	default:
		return nil, topLevelError("yaml", yamlLine(err), v)
	}
}

func (yamlCodec) Marshal(m map[string]any) ([]byte, error) {
	if m == nil {
		m = map[string]any{}
	}
	var n yaml.Node
	kept, _ := keepNegativeZero(m)
	if err := n.Encode(kept); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	quoteMergeKeys(&n)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

// quoteMergeKeys quotes every mapping key "<<": yaml v3 writes the string
// key plain, and reading it back would take it for a merge key.
func quoteMergeKeys(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "<<" {
				k.Tag, k.Style = "!!str", yaml.DoubleQuotedStyle
			}
		}
	}
	for _, c := range n.Content {
		quoteMergeKeys(c)
	}
}

// keepNegativeZero returns v with every float negative zero in it
// written as -0.0 (yaml v3 writes -0, which reads back as the integer 0),
// and whether there was one; the maps and lists on the way to one are
// copied, v itself is not modified.
func keepNegativeZero(v any) (any, bool) {
	switch v := v.(type) {
	case float64:
		if v == 0 && math.Signbit(v) {
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!float", Value: "-0.0"}, true
		}
	case map[string]any:
		var c map[string]any
		for k, e := range v {
			if ne, changed := keepNegativeZero(e); changed {
				if c == nil {
					c = maps.Clone(v)
				}
				c[k] = ne
			}
		}
		if c != nil {
			return c, true
		}
	case []any:
		var c []any
		for i, e := range v {
			if ne, changed := keepNegativeZero(e); changed {
				if c == nil {
					c = slices.Clone(v)
				}
				c[i] = ne
			}
		}
		if c != nil {
			return c, true
		}
	}
	return v, false
}

type tomlCodec struct{}

func (tomlCodec) Unmarshal(b []byte) (map[string]any, error) {
	m, err := ktoml.Parser().Unmarshal(b)
	if err != nil {
		return nil, tomlError(err)
	}
	return normalise("toml", m)
}

func (tomlCodec) Marshal(m map[string]any) ([]byte, error) {
	if m == nil {
		m = map[string]any{}
	}
	b, err := ktoml.Parser().Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode toml: %w", err)
	}
	return b, nil
}
