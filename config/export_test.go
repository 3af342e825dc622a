package config

// EtcdKeysBuilt reports whether the etcd layer of c holds its Keys map,
// rather than the leaves Load read standing for it (see layer.leaves). It
// must not run while c may be applying a change.
func EtcdKeysBuilt[T any](c *Config[T]) bool {
	return c.layers[c.etcdIdx].content.Keys != nil
}
