package etcd

import (
	"fmt"
	"path"
	"strings"
	"unicode"

	"github.com/strataconf/strata/codec"
)

// Layout names the etcd keys of one application's configuration under a
// prefix P, as described in DESIGN.md:
//
//	P/data/a/b/c           one leaf value, bound to path a.b.c
//	P/data/a.yaml          a document (.yaml, .yml, .json, .toml) mounted at path a
//	P/meta/version         the guard key changed by every write of the writer
//	P/meta/releases/<n>    release records
//	P/meta/checkpoints/<n> full content of release n, compressed (parts at <n>/<i>)
//	P/meta/writes/<id>     lease-bound marker of one committed write (exactly-once commits)
//	P/meta/schema          the JSON Schema of the bound type
//	P/meta/instances/<id>  lease-bound records of running instances
type Layout struct {
	prefix string // without trailing slash
}

// CheckPrefix reports whether prefix is an absolute key path: a slash and
// one or more segments separated by single slashes ("/strata/payments/prod";
// a trailing slash is allowed), with no segment that is empty, "." or "..",
// or holds white space or control characters.
func CheckPrefix(prefix string) error {
	rule := `prefixes are absolute key paths like /strata/app/prod: a leading "/", segments separated by single slashes, no empty, ".", ".." or blank segments, no white space or control characters`
	p := strings.TrimSuffix(prefix, "/")
	if !strings.HasPrefix(p, "/") || p == "" {
		return fmt.Errorf("prefix %q is not an absolute key path (%s)", prefix, rule)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "" || seg == "." || seg == ".." || strings.IndexFunc(seg, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
			return fmt.Errorf("prefix %q has a bad segment %q (%s)", prefix, seg, rule)
		}
	}
	return nil
}

// NewLayout returns the layout under prefix. A trailing slash is ignored.
func NewLayout(prefix string) Layout {
	return Layout{prefix: strings.TrimRight(prefix, "/")}
}

// Prefix returns the prefix without a trailing slash.
func (l Layout) Prefix() string { return l.prefix }

// Data returns the prefix of all data keys, ending in a slash.
func (l Layout) Data() string { return l.prefix + "/data/" }

// Meta returns the prefix of all meta keys, ending in a slash.
func (l Layout) Meta() string { return l.prefix + "/meta/" }

// Version returns the guard key.
func (l Layout) Version() string { return l.prefix + "/meta/version" }

// Releases returns the prefix of release records, ending in a slash.
func (l Layout) Releases() string { return l.prefix + "/meta/releases/" }

// Checkpoints returns the prefix of release checkpoints, ending in a slash.
func (l Layout) Checkpoints() string { return l.prefix + "/meta/checkpoints/" }

// Writes returns the prefix of the write markers, ending in a slash.
func (l Layout) Writes() string { return l.prefix + "/meta/writes/" }

// Schema returns the key of the published JSON Schema.
func (l Layout) Schema() string { return l.prefix + "/meta/schema" }

// Instances returns the prefix of instance records, ending in a slash.
func (l Layout) Instances() string { return l.prefix + "/meta/instances/" }

// LeafKey returns the data key that holds the leaf at a dotted config path.
func (l Layout) LeafKey(configPath string) string {
	return l.Data() + strings.ReplaceAll(configPath, ".", "/")
}

// Entry is what one data key contributes to the configuration tree.
type Entry struct {
	// Path is the dotted config path the key is bound to ("db.port"),
	// empty for a document mounted at the root.
	Path string
	// Codec is set for a document key and nil for a leaf key.
	Codec codec.Codec
}

// Parse maps a data key to its config path. It fails for keys outside the
// data prefix and for keys that do not fit the layout: empty segments, dots
// in a leaf key's segments (a dot would be read as a path separator), or a
// document extension the codecs do not know.
func (l Layout) Parse(key string) (Entry, error) {
	rel, ok := strings.CutPrefix(key, l.Data())
	if !ok {
		return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("not under %s", l.Data())}
	}
	segs := strings.Split(rel, "/")
	last := segs[len(segs)-1]
	var c codec.Codec
	if ext := path.Ext(last); ext != "" {
		var known bool
		if c, known = codec.ForPath(last); !known {
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("unknown document extension %q (want one of %s)", ext, strings.Join(codec.Extensions(), ", "))}
		}
		segs[len(segs)-1] = strings.TrimSuffix(last, ext)
		if len(segs) == 1 && segs[0] == "" {
			return Entry{Path: "", Codec: c}, nil // P/data/.yaml: a document at the root
		}
	}
	for _, s := range segs {
		switch {
		case s == "":
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("empty path segment")}
		case strings.Contains(s, "."):
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("segment %q contains a dot; use / to separate path levels", s)}
		}
	}
	return Entry{Path: strings.Join(segs, "."), Codec: c}, nil
}

// KeyError is a problem with one etcd key: it does not fit the layout, or
// its document does not parse.
type KeyError struct {
	Key string
	Err error
}

// Error names the key and the problem.
func (e *KeyError) Error() string { return "etcd key " + e.Key + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *KeyError) Unwrap() error { return e.Err }
