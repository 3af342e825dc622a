// Package structs reads configuration from a Go value: the struct defaults
// layer. Fields map to config paths as codec.Bind maps them back (koanf
// tags, or the lower-cased field name).
package structs

import (
	"context"
	"fmt"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/providers"
)

// Provider holds one value. It is a providers.Source.
type Provider struct {
	v any
}

// New returns a Provider of v, a struct or a pointer to one. v is read on
// every Read; the caller must not change it meanwhile.
func New(v any) *Provider { return &Provider{v: v} }

// Read renders the value as a tree (codec.ToMap). Its leaves have no key
// of their own: Keys maps each leaf path to "".
func (p *Provider) Read(context.Context) (*providers.Content, error) {
	tree, err := codec.ToMap(p.v)
	if err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	return &providers.Content{Tree: tree, Keys: providers.LeafKeys(tree, "")}, nil
}
