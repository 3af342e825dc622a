// Package file reads configuration from one file: json, yaml or toml, chosen
// by the file's extension (see codec.ForPath).
package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/providers"
)

// Provider reads one configuration file (json, yaml or toml, chosen by
// extension). It is a providers.Watcher.
type Provider struct {
	path  string
	codec codec.Codec

	mu   sync.Mutex // guards seen: Read and Watch may run on different goroutines
	seen *snapshot  // what the last Read saw; Watch's starting point
}

// snapshot is the file's content (or read error) at one moment.
type snapshot struct {
	b   []byte
	err error
}

func (p *Provider) lastSeen() *snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen
}

// New returns a Provider for the file at path. It fails if the extension
// names no known codec; the file itself need not exist yet.
func New(path string) (*Provider, error) {
	c, ok := codec.ForPath(path)
	if !ok {
		return nil, fmt.Errorf("file %s: unknown extension %q (want one of %s)",
			path, filepath.Ext(path), strings.Join(codec.Extensions(), ", "))
	}
	return &Provider{path: path, codec: c}, nil
}

// Path returns the path the Provider was created with.
func (p *Provider) Path() string { return p.path }

// Read reads and decodes the file; every leaf of the content has the
// file's path as its key. Errors start with "file <path>: " and wrap the
// cause: fs.ErrNotExist for a missing file, *codec.SyntaxError for
// malformed content. An empty file gives an empty tree.
func (p *Provider) Read(context.Context) (*providers.Content, error) {
	b, err := os.ReadFile(p.path)
	p.mu.Lock()
	p.seen = &snapshot{b: b, err: err}
	p.mu.Unlock()
	return p.decode(b, err)
}

// decode turns the outcome of reading the file into its content.
func (p *Provider) decode(b []byte, err error) (*providers.Content, error) {
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", p.path, err)
	}
	m, err := p.codec.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", p.path, err)
	}
	return &providers.Content{Tree: m, Keys: providers.LeafKeys(m, p.path)}, nil
}
