// Package env maps environment variables onto configuration paths.
//
// Only variables whose name starts with the prefix (case-sensitive) count.
// The prefix is removed, the rest is lower-cased, and a double underscore
// "__" separates path levels, read from the left:
//
//	APP_DB__PORT           db.port
//	APP_MAX_CONNS          max_conns
//	APP_DB__POOL__MAX_IDLE db.pool.max_idle
//	APP_DB___X             db._x
//
// Values stay strings, the leaf text as given; they are converted when the
// config struct is bound. Ignored: a variable with nothing after the prefix,
// one whose path has an empty level (APP___X, APP_DB__), and one whose name
// holds a "." after the prefix.
//
// Conflicts are settled deterministically:
//   - A leaf and a subtree at the same path (APP_DB=x and APP_DB__PORT=1):
//     the deeper one wins, APP_DB is dropped.
//   - Two names for the same path (APP_DB__PORT and APP_db__PORT): the name
//     that sorts first byte-wise wins, so the upper-case spelling does.
//   - A name repeated in the environment: the first occurrence wins, as with
//     os.Getenv.
package env

import (
	"context"
	"os"
	"strings"

	"github.com/knadh/koanf/maps"

	"github.com/strataconf/strata/providers"
)

// Provider maps environment variables with a prefix onto config paths. It
// is a providers.Source; the environment of a process does not change, so
// it is not watched.
type Provider struct {
	prefix  string
	environ func() []string
}

// Option configures a Provider.
type Option func(*Provider)

// WithEnviron sets the source of "K=V" pairs; the default is os.Environ.
func WithEnviron(fn func() []string) Option {
	return func(p *Provider) { p.environ = fn }
}

// New returns a Provider for the variables whose names start with prefix.
func New(prefix string, opts ...Option) *Provider {
	p := &Provider{prefix: prefix, environ: os.Environ}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Read returns the nested tree of values (leaves are strings) with, as the
// key of each config path, the name of the variable it came from. It never
// fails.
func (p *Provider) Read(context.Context) (*providers.Content, error) {
	values := map[string]string{}
	vars := map[string]string{}
	seen := map[string]bool{}
	for _, kv := range p.environ() {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		path, ok := p.path(name)
		if !ok {
			continue
		}
		if prev, dup := vars[path]; dup && prev < name {
			continue
		}
		values[path], vars[path] = value, name
	}

	// A path that is an ancestor of another is a leaf shadowed by a subtree.
	inner := map[string]bool{}
	for path := range values {
		for i := range len(path) {
			if path[i] == '.' {
				inner[path[:i]] = true
			}
		}
	}
	flat := make(map[string]any, len(values))
	for path, value := range values {
		if inner[path] {
			delete(vars, path)
			continue
		}
		flat[path] = value
	}
	return &providers.Content{Tree: maps.Unflatten(flat, "."), Keys: vars}, nil
}

// path maps a variable name to its config path; ok is false if the variable
// does not count.
func (p *Provider) path(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, p.prefix)
	if !ok || rest == "" || strings.Contains(rest, ".") {
		return "", false
	}
	levels := strings.Split(strings.ToLower(rest), "__")
	for _, l := range levels {
		if l == "" {
			return "", false
		}
	}
	return strings.Join(levels, "."), true
}
