package config

import (
	"time"

	"github.com/strataconf/strata/schema"
)

// Layer names a kind of configuration source. Layers are merged in an order
// (see WithOrder); a later layer wins over an earlier one, key by key.
type Layer string

// The layers, in their default order of precedence (lowest first).
const (
	LayerDefaults Layer = "defaults" // the struct given to WithDefaults
	LayerFile     Layer = "file"     // files given to WithFile, in the order given
	LayerEnv      Layer = "env"      // environment variables (WithEnv)
	LayerEtcd     Layer = "etcd"     // the etcd prefix (WithEtcd)
)

// DefaultOrder is the precedence used without WithOrder: struct defaults <
// files < environment < etcd.
var DefaultOrder = []Layer{LayerDefaults, LayerFile, LayerEnv, LayerEtcd}

// Origin says where the value at one config path came from.
type Origin struct {
	Layer Layer
	// Key is the file path, environment variable or etcd key that holds the
	// value; empty for struct defaults.
	Key string
}

// String renders the origin for people: "etcd key /app/data/db/port",
// "file app.yaml", "env APP_DB__PORT", "defaults".
func (o Origin) String() string {
	switch o.Layer {
	case LayerEtcd:
		return "etcd key " + o.Key
	case LayerFile:
		return "file " + o.Key
	case LayerEnv:
		return "env " + o.Key
	}
	if o.Key != "" {
		return string(o.Layer) + " " + o.Key
	}
	return string(o.Layer)
}

// Snapshot is one published configuration: the bound value and where it came
// from. A snapshot is never mutated after it is published; treat Value as
// read-only.
type Snapshot[T any] struct {
	// Value is the bound and validated configuration.
	Value *T
	// Revision is the etcd revision the etcd layer was read at; 0 without
	// an etcd layer.
	Revision int64
	// Origins maps every config path that has a value ("db.port") to the
	// layer and key it came from.
	Origins map[string]Origin
	// Unknown lists the config paths present in some layer that match no
	// field of T, sorted.
	Unknown []string
	// Time is when the snapshot was published.
	Time time.Time

	values  *flatValues // flat merged values, for change detection
	secrets []string    // config paths of secret fields
}

// Mask is what Values shows instead of the value of a secret field.
const Mask = "******"

// Values returns a copy of the merged values before binding, by config path
// ("db.port" → "5432"), with the values of fields tagged secret replaced by
// Mask, wherever they are: in the elements of lists and maps
// ("creds.0.token" for a secret Token of the elements of Creds), and in a
// value that holds one whole (a list given as one leaf of JSON text, a
// struct given as a JSON object at "db"). It is meant for display: the
// bound Value is the configuration.
func (s *Snapshot[T]) Values() map[string]any {
	out := make(map[string]any, s.values.len())
	s.values.each(func(p string, v any) {
		if schema.HoldsSecret(s.secrets, p) {
			v = Mask
		}
		out[p] = v
	})
	return out
}
