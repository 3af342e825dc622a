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
//
// The content of a Data from ReadLeaves whose keys are all plain leaves was
// built by the read, and Content hands it over to its first caller, who may
// change it: later calls build nothing (an empty tree).
func (d *Data) Content(l Layout) (*providers.Content, error) {
	if lv := d.leaves; lv != nil {
		d.leaves = nil
		return &providers.Content{Tree: lv.tree, Keys: lv.sources, Revision: d.Revision}, nil
	}
	tree, keys, err := d.Tree(l)
	if err != nil {
		return &providers.Content{Revision: d.Revision, Raw: d.KVs}, fmt.Errorf("revision %d: %w", d.Revision, err)
	}
	return &providers.Content{Tree: tree, Keys: keys, Revision: d.Revision, Raw: d.KVs}, nil
}
