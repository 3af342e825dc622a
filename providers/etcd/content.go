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
// change it, with Keys made from the read's leaves: later calls (and calls
// after Leaves) build nothing (an empty tree).
func (d *Data) Content(l Layout) (*providers.Content, error) {
	if ct, lv, ok := d.Leaves(); ok {
		ct.Keys = lv.Map()
		return ct, nil
	}
	tree, keys, err := d.Tree(l)
	if err != nil {
		return &providers.Content{Revision: d.Revision, Raw: d.KVs}, fmt.Errorf("revision %d: %w", d.Revision, err)
	}
	return &providers.Content{Tree: tree, Keys: keys, Revision: d.Revision, Raw: d.KVs}, nil
}

// Leaves hands over, as Content does, the content a Data from ReadLeaves
// built when its keys are all plain leaves, but with Keys nil: lv lists the
// path and key of every leaf in their place, without a map. It does so
// once, to its first caller (of Leaves or Content); ok is false, and
// nothing is handed over, for any other Data and on later calls.
func (d *Data) Leaves() (ct *providers.Content, lv *Leaves, ok bool) {
	x := d.leaves
	if x == nil {
		return nil, nil, false
	}
	d.leaves = nil
	return &providers.Content{Tree: x.tree, Revision: d.Revision}, x.keys, true
}
