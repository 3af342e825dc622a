package file

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/strataconf/strata/codec"
)

func write(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRead(t *testing.T) {
	t.Parallel()
	want := map[string]any{"name": "payments", "db": map[string]any{"host": "db.internal"}}
	tests := []struct {
		file, content string
		want          map[string]any
	}{
		{"app.json", `{"name": "payments", "db": {"host": "db.internal"}}`, want},
		{"app.yaml", "name: payments\ndb:\n  host: db.internal\n", want},
		{"app.yml", "name: payments\ndb:\n  host: db.internal\n", want},
		{"app.toml", "name = \"payments\"\n[db]\nhost = \"db.internal\"\n", want},
		{"empty.yaml", "", map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := write(t, tt.file, tt.content)
			p, err := New(path)
			if err != nil {
				t.Fatal(err)
			}
			if p.Path() != path {
				t.Errorf("Path() = %q, want %q", p.Path(), path)
			}
			got, err := readTree(p)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Read = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestNewUnknownExtension(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"app.ini", "app", "app.yaml.bak"} {
		if p, err := New(path); err == nil || p != nil {
			t.Errorf("New(%q) = %v, %v; want an error", path, p, err)
		}
	}
}

func TestReadMissing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "app.yaml")
	p, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = readTree(p)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Read = %v, want fs.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "file "+path+": open ") {
		t.Errorf("Read error %q does not name the file", err)
	}
}

func TestReadMalformed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, content, format string
		line                  int
	}{
		{"app.yaml", "a: 1\nb: 2\nc: [\n", "yaml", 0},
		{"app.yaml", "a: 1\nb: 2\nc: d: e\n", "yaml", 3},
		{"app.json", "{\n  \"a\": 1,\n  \"b\": ]\n}\n", "json", 3},
		{"app.toml", "a = 1\nb = 2\nc = = 3\n", "toml", 3},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := write(t, tt.file, tt.content)
			p, err := New(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = readTree(p)
			var se *codec.SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Read = %v, want a *codec.SyntaxError", err)
			}
			if se.Format != tt.format || (tt.line != 0 && se.Line != tt.line) {
				t.Errorf("SyntaxError = %s line %d, want %s line %d", se.Format, se.Line, tt.format, tt.line)
			}
			if prefix := "file " + path + ": " + tt.format + ": "; !strings.HasPrefix(err.Error(), prefix) {
				t.Errorf("Read error %q, want prefix %q", err, prefix)
			}
		})
	}
}

// readTree reads p and returns its tree.
func readTree(p *Provider) (map[string]any, error) {
	c, err := p.Read(context.Background())
	if err != nil {
		return nil, err
	}
	return c.Tree, nil
}
