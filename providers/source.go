// Package providers says what a configuration source offers. The defaults,
// file, env and etcd providers in the packages below satisfy Source (and
// Watcher where their content changes); config merges their contents layer
// by layer and knows nothing else of them.
package providers

import "context"

// Content is what a source holds at one moment. A Content is never
// modified once returned.
type Content struct {
	// Tree holds the values nested by path segment: maps of string keys
	// down to the leaves.
	Tree map[string]any
	// Keys maps the dotted path of each leaf of Tree ("db.port"; a list is
	// one leaf) to the key it was read from: the file path, the
	// environment variable, the etcd key. It is empty for values that have
	// no key of their own (struct defaults).
	Keys map[string]string
	// Revision orders the contents of a source that has revisions (etcd);
	// 0 for others.
	Revision int64
	// Raw is the content as the source stores it, key by key, for sources
	// made of keys (etcd: each data key and its value); nil for others.
	Raw map[string][]byte
	// Resync is true when the source re-read everything because it lost
	// track of single changes (etcd compacted the history a watch needed):
	// the change since the previous content may span many revisions.
	Resync bool
	// Changes, when not nil, means this content is the source's previous
	// content with these changes applied, and Tree, Keys and Raw are nil:
	// a source that knows what changed hands over only that, so that a
	// change costs what it changes. Only a Watcher delivers such a content,
	// never as the first one after Read.
	Changes []Change
}

// Change sets or removes the value of one key of a content.
type Change struct {
	// Path is the dotted path of the leaf the key holds ("db.port"); empty
	// when the key is not a plain leaf (a document, or a key that does not
	// fit the source's layout), whose change the receiver cannot apply
	// alone: it rebuilds the content from its keys (Raw).
	Path string
	// Value is the new value; nil when Removed.
	Value any
	// Key is where the value is stored (the etcd key); it is also the key
	// that was removed.
	Key string
	// Raw is the stored value as the source keeps it (see Content.Raw);
	// nil when Removed.
	Raw []byte
	// Removed is true when the leaf is gone.
	Removed bool
}

// Source is one layer of configuration.
type Source interface {
	// Read returns the content the source holds now. Errors name what
	// could not be read: the file, the variable, the key, the endpoints.
	Read(ctx context.Context) (*Content, error)
}

// Watcher is a Source whose content changes.
type Watcher interface {
	Source
	// Watch follows the source until ctx is done and then returns ctx's
	// error (or earlier, an error that ends the watch for good). For each
	// change it calls fn, from one goroutine, with the new content, or
	// with the error that kept it from reading the new content (content
	// may then be nil, or carry only the Revision that could not be read).
	Watch(ctx context.Context, fn func(content *Content, err error)) error
}

// LeafKeys maps every leaf path of tree (a list is one leaf, so is an
// empty map) to key: the Keys of a source whose whole content comes from
// one place, a file or the defaults.
func LeafKeys(tree map[string]any, key string) map[string]string {
	keys := make(map[string]string)
	var walk func(m map[string]any, prefix string)
	walk = func(m map[string]any, prefix string) {
		for k, v := range m {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
				walk(sub, p)
				continue
			}
			keys[p] = key
		}
	}
	walk(tree, "")
	return keys
}
