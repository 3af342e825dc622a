package tree

import (
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/schema"
)

// YAMLDocuments counts the documents of a YAML stream, 0 when it does not
// parse (the parser then says why). push and the console refuse a stream
// of several.
func YAMLDocuments(b []byte) int {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		var node yaml.Node
		if err := dec.Decode(&node); err != nil {
			if errors.Is(err, io.EOF) {
				return n
			}
			return 0
		}
		n++
	}
}

// Envelope is the "kind" of the JSON envelope in which `strata get -o json`
// prints the whole configuration: {"kind": Envelope, "version": V,
// "revision": R, "config": {...}}. It marks the output as get's, so that
// pushing it back unwraps it, and nothing else is unwrapped.
const Envelope = "strata-config"

// Unwrap returns the configuration of `strata get -o json` output (an
// object of exactly kind, version, revision and config: kind Envelope,
// version and revision numbers, config an object), or doc itself, so that
// get's output can be pushed back as it is. A document without that kind
// is the configuration as written, even when its keys are exactly
// version, revision and config.
func Unwrap(doc map[string]any) map[string]any {
	if len(doc) != 4 || doc["kind"] != Envelope || !isNumber(doc["version"]) || !isNumber(doc["revision"]) {
		return doc
	}
	if cfg, ok := doc["config"].(map[string]any); ok {
		return cfg
	}
	return doc
}

// isNumber reports whether v is a number as the codecs decode one.
func isNumber(v any) bool {
	switch v.(type) {
	case int, int64, uint64, float64:
		return true
	}
	return false
}

// UnknownIn reports whether the leaf at data key path (relative), or the
// document key path with value text, holds a path the schema does not
// allow, whose value may be a mistyped secret. A document that does not
// parse cannot be told apart: it counts as holding one.
func UnknownIn(sch *schema.Schema, path, text string) bool {
	c, isDoc := codec.ForPath(path)
	if !isDoc {
		return sch.Unknown(path)
	}
	if text == "" {
		return false
	}
	doc, err := c.Unmarshal([]byte(text))
	if err != nil {
		return true
	}
	mount := strings.ReplaceAll(strings.TrimSuffix(path, filepath.Ext(path)), "/", ".")
	for p := range Flatten(doc) {
		if sch.Unknown(strings.TrimPrefix(mount+"."+p, ".")) {
			return true
		}
	}
	return false
}
