package etcd

import (
	"fmt"

	"github.com/strataconf/strata/providers"
)

// Content returns d as the content of a configuration layer under layout
// l: the tree and the key of every leaf (see Tree), the revision, and the
// data keys as Raw. When the tree cannot be built the error names the
// revision, and the content returned with it carries only the revision
// and the raw keys.
func (d *Data) Content(l Layout) (*providers.Content, error) {
	tree, keys, err := d.Tree(l)
	if err != nil {
		return &providers.Content{Revision: d.Revision, Raw: d.KVs}, fmt.Errorf("revision %d: %w", d.Revision, err)
	}
	return &providers.Content{Tree: tree, Keys: keys, Revision: d.Revision, Raw: d.KVs}, nil
}
