package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Relax returns doc with the "required" entries removed for the config
// paths in provided (dotted, "db.port") and for every property that has a
// provided path beneath it. An application publishes its schema relaxed by
// the paths its lower layers (defaults, files, environment) already give,
// so that a document checked against the schema need not repeat them. Parts
// of the schema reached through "$ref" are left as they are.
func Relax(doc []byte, provided []string) ([]byte, error) {
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("schema: relax: %w", err)
	}
	set := make(map[string]bool, len(provided))
	for _, p := range provided {
		// A provided leaf also provides every object above it.
		segs := strings.Split(p, ".")
		for i := 1; i <= len(segs); i++ {
			set[strings.Join(segs[:i], ".")] = true
		}
	}
	relax(root, "", set)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("schema: relax: %w", err)
	}
	return buf.Bytes(), nil
}

func relax(node map[string]any, prefix string, provided map[string]bool) {
	path := func(name string) string {
		if prefix == "" {
			return name
		}
		return prefix + "." + name
	}
	if req, ok := node["required"].([]any); ok {
		kept := slices.DeleteFunc(req, func(v any) bool {
			name, _ := v.(string)
			return provided[path(name)]
		})
		if len(kept) == 0 {
			delete(node, "required")
		} else {
			node["required"] = kept
		}
	}
	props, _ := node["properties"].(map[string]any)
	for name, p := range props {
		if child, ok := p.(map[string]any); ok {
			relax(child, path(name), provided)
		}
	}
}
