// Package file reads configuration from one file: json, yaml or toml, chosen
// by the file's extension (see codec.ForPath).
package file

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/strataconf/strata/codec"
)

// Provider reads one configuration file (json, yaml or toml, chosen by
// extension).
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

// Read reads and decodes the file. Errors start with "file <path>: " and wrap
// the cause: fs.ErrNotExist for a missing file, *codec.SyntaxError for
// malformed content. An empty file gives an empty map.
func (p *Provider) Read() (map[string]any, error) {
	b, err := os.ReadFile(p.path)
	p.mu.Lock()
	p.seen = &snapshot{b: b, err: err}
	p.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", p.path, err)
	}
	m, err := p.codec.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", p.path, err)
	}
	return m, nil
}
