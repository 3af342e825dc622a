// Package config binds a typed Go struct to layered configuration sources:
// struct defaults, files, environment variables and an etcd prefix.
//
// Load reads every layer, merges them in precedence order (later wins, key by
// key; the default order is defaults < files < environment < etcd), binds the
// result to a new T and validates it with its `validate` tags. Get returns the
// current value lock-free; Snapshot adds the etcd revision and, per config
// path, the layer and key the value came from.
//
// A struct field's config key is its `koanf:"name"` tag, or else its name in
// lower case. Fields tagged `secret:"true"` are masked in every error and
// log line.
package config
