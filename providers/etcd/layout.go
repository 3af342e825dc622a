package etcd

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/strataconf/strata/codec"
)

// Layout names the etcd keys of one application's configuration under a
// prefix P (README lists them too):
//
//	P/data/a/b/c           one leaf value, bound to path a.b.c
//	P/data/a.yaml          a document (.yaml, .yml, .json, .toml) mounted at path a
//	P/meta/version         the guard key changed by every write of the writer
//	P/meta/releases/<n>    release records
//	P/meta/checkpoints/<n> full content of release n, compressed (parts at <n>/<i>)
//	P/meta/schema          the JSON Schema of the bound type
//	P/meta/instances/<id>  lease-bound records of running instances
//	P/meta/rollout         the rollout of the prefix, running or ended
//	P/meta/election/rollout/<lease>  candidates of the rollout controller election
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

// Schema returns the key of the published JSON Schema.
func (l Layout) Schema() string { return l.prefix + "/meta/schema" }

// Instances returns the prefix of instance records, ending in a slash.
func (l Layout) Instances() string { return l.prefix + "/meta/instances/" }

// Rollout returns the key of the rollout record.
func (l Layout) Rollout() string { return l.prefix + "/meta/rollout" }

// RolloutElection returns the name of the rollout controllers' election,
// as concurrency.NewElection takes it (its candidates' keys lie beneath,
// at RolloutElection()+"/<lease>").
func (l Layout) RolloutElection() string { return l.prefix + "/meta/election/rollout" }

// LeafKey returns the data key that holds the leaf at a dotted config path.
// It does not check the path; see LeafRel.
func (l Layout) LeafKey(configPath string) string {
	return l.Data() + strings.ReplaceAll(configPath, ".", "/")
}

// DataKey returns the data key of a key relative to Data() ("db/port" →
// "P/data/db/port").
func (l Layout) DataKey(rel string) string { return l.Data() + rel }

// RelKey returns a data key relative to Data() ("P/data/db/port" →
// "db/port"), and false for a key outside the data prefix.
func (l Layout) RelKey(key string) (string, bool) { return strings.CutPrefix(key, l.Data()) }

// LeafRel returns the key, relative to Data(), of the leaf at a dotted
// config path ("db.port" → "db/port"). It fails for a path that is empty,
// holds a slash, or has an empty segment.
func LeafRel(configPath string) (string, error) {
	if configPath == "" || strings.Contains(configPath, "/") {
		return "", fmt.Errorf("%q is not a config path (dotted, like db.port)", configPath)
	}
	if slices.Contains(strings.Split(configPath, "."), "") {
		return "", fmt.Errorf("%q has an empty path segment", configPath)
	}
	return strings.ReplaceAll(configPath, ".", "/"), nil
}

// releaseKeyWidth zero-pads release and checkpoint numbers so that their
// keys sort by number and retention can delete a key range.
const releaseKeyWidth = 20

// number formats n as a key segment of releaseKeyWidth digits.
func number(n int64) string { return fmt.Sprintf("%0*d", releaseKeyWidth, n) }

// parseNumber reads a key segment written by number.
func parseNumber(seg string) (int64, bool) {
	if seg == "" || strings.ContainsAny(seg, "+-") {
		return 0, false
	}
	n, err := strconv.ParseInt(seg, 10, 64)
	return n, err == nil
}

// Release returns the key of release record n, zero-padded so that the
// keys sort by number.
func (l Layout) Release(n int64) string { return l.Releases() + number(n) }

// ParseRelease returns the number of a release record key, and false for a
// key that is not one.
func (l Layout) ParseRelease(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, l.Releases())
	if !ok {
		return 0, false
	}
	return parseNumber(rest)
}

// Checkpoint returns the index key of the checkpoint of release n; its
// parts lie beneath it (see CheckpointPart).
func (l Layout) Checkpoint(n int64) string { return l.Checkpoints() + number(n) }

// CheckpointPart returns the key of part i of the checkpoint of release n.
func (l Layout) CheckpointPart(n int64, i int) string {
	return l.Checkpoint(n) + "/" + strconv.Itoa(i)
}

// ParseCheckpoint returns the release number of a checkpoint's index key,
// and false for any other key (a part included).
func (l Layout) ParseCheckpoint(key string) (int64, bool) {
	rest, ok := strings.CutPrefix(key, l.Checkpoints())
	if !ok {
		return 0, false
	}
	return parseNumber(rest)
}

// Instance returns the key of the record of instance id.
func (l Layout) Instance(id string) string { return l.Instances() + id }

// ParseInstance returns the id of an instance record key, and false for a
// key that is not one.
func (l Layout) ParseInstance(key string) (string, bool) {
	id, ok := strings.CutPrefix(key, l.Instances())
	return id, ok && id != ""
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
	// As strings.CutPrefix(key, l.Data()), without building l.Data() for
	// every key.
	rel, ok := strings.CutPrefix(key, l.prefix)
	if ok {
		rel, ok = strings.CutPrefix(rel, "/data/")
	}
	if !ok {
		return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("not under %s", l.Data())}
	}
	if plainLeaf(rel) {
		// The common case, told apart at once.
		return Entry{Path: dotted(rel)}, nil
	}
	dir, last := "", rel
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		dir, last = rel[:i+1], rel[i+1:]
	}
	var c codec.Codec
	if ext := path.Ext(last); ext != "" {
		var known bool
		if c, known = codec.ForPath(last); !known {
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("unknown document extension %q (want one of %s)", ext, strings.Join(codec.Extensions(), ", "))}
		}
		if dir == "" && last == ext {
			return Entry{Path: "", Codec: c}, nil // P/data/.yaml: a document at the root
		}
		rel = dir + strings.TrimSuffix(last, ext)
	}
	for s := range strings.SplitSeq(rel, "/") {
		switch {
		case s == "":
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("empty path segment")}
		case strings.Contains(s, "."):
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("segment %q contains a dot; use / to separate path levels", s)}
		}
	}
	return Entry{Path: dotted(rel), Codec: c}, nil
}

// leafRel returns key relative to the data prefix when it is a plain leaf
// key (see plainLeaf): the keys Parse maps to a leaf Entry, and only those.
func (l Layout) leafRel(key string) (string, bool) {
	rel, ok := strings.CutPrefix(key, l.prefix)
	if ok {
		rel, ok = strings.CutPrefix(rel, "/data/")
	}
	return rel, ok && plainLeaf(rel)
}

// plainLeaf reports whether rel, a key relative to the data prefix, is a
// leaf key that fits the layout: not empty, no document extension, no
// segment empty or holding a dot. Every other key is a document or does
// not fit the layout.
func plainLeaf(rel string) bool {
	return rel != "" && rel[0] != '/' && rel[len(rel)-1] != '/' && !strings.Contains(rel, "//") && !strings.Contains(rel, ".")
}

// dotted returns the key path rel with its slashes turned into dots: the
// config path "db.port" of "db/port" (strings.ReplaceAll, in one
// allocation and one pass).
func dotted(rel string) string {
	if !strings.Contains(rel, "/") {
		return rel
	}
	var b strings.Builder
	b.Grow(len(rel))
	writeDotted(&b, rel)
	return b.String()
}

// writeDotted writes rel to b with its slashes turned into dots.
func writeDotted(b *strings.Builder, rel string) {
	for {
		seg, rest, more := strings.Cut(rel, "/")
		b.WriteString(seg)
		if !more {
			return
		}
		b.WriteByte('.')
		rel = rest
	}
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
