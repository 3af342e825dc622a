package config

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config/secret"
)

// Option configures Load.
type Option func(*options)

// UnknownKeys is the policy for keys that match no field of the type.
type UnknownKeys int

// Policies for unknown keys.
const (
	// UnknownReport logs unknown keys at warning level and lists them in
	// Snapshot.Unknown; the configuration is still used. The default.
	UnknownReport UnknownKeys = iota
	// UnknownIgnore lists unknown keys in Snapshot.Unknown and says nothing.
	UnknownIgnore
	// UnknownFail rejects a configuration with unknown keys (ErrUnknownKeys).
	UnknownFail
)

type options struct {
	defaults   any // T or *T, checked by Load
	files      []string
	envPrefix  string
	environ    func() []string
	etcd       *clientv3.Client
	etcdPrefix string
	order      []Layer
	unknown    UnknownKeys
	logger     *slog.Logger
	envSet     bool
	watchEtcd  bool
	watchFiles bool
	publish    bool

	startup      StartupPolicy
	snapshotFile string
	instance     *instanceOptions
	healthCheck  func(context.Context) error

	keyring       secret.Keyring // opens sealed values of the etcd layer
	requireSealed bool           // plain text at a secret path of the etcd layer is an error
	metrics       prometheus.Registerer
}

// WithDefaults sets the lowest layer: the values of v, a T or *T of the type
// given to Load. Fields of v are used as they are, zero values included.
func WithDefaults(v any) Option {
	return func(o *options) { o.defaults = v }
}

// WithFile adds a file layer. The codec is chosen by the extension (.json,
// .yaml, .yml, .toml). Given several times, later files win over earlier
// ones. A missing file is an error.
func WithFile(path string) Option {
	return func(o *options) { o.files = append(o.files, path) }
}

// WithEnv adds the environment layer: variables starting with prefix, mapped
// to config paths by lower-casing the rest and reading a double underscore as
// a level separator (APP_DB__PORT → db.port, APP_MAX_CONNS → max_conns).
func WithEnv(prefix string) Option {
	return func(o *options) { o.envPrefix, o.envSet = prefix, true }
}

// WithEnviron replaces os.Environ as the source of the environment layer,
// for tests and embedding.
func WithEnviron(environ func() []string) Option {
	return func(o *options) { o.environ = environ }
}

// WithEtcd adds the etcd layer: the data keys under prefix, read through
// cli. The client stays the caller's; Close does not close it.
func WithEtcd(cli *clientv3.Client, prefix string) Option {
	return func(o *options) { o.etcd, o.etcdPrefix = cli, prefix }
}

// WithOrder sets the precedence of the layers, lowest first. It must name
// every layer that is configured; the default is DefaultOrder.
func WithOrder(layers ...Layer) Option {
	return func(o *options) { o.order = append([]Layer(nil), layers...) }
}

// WithUnknownKeys sets the policy for keys that match no field.
func WithUnknownKeys(p UnknownKeys) Option {
	return func(o *options) { o.unknown = p }
}

// WithLogger sets the logger; the default is slog.Default(). Values of
// fields tagged secret are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithWatch turns hot reload on or off for the etcd layer and the file
// layers. It is on by default: the etcd prefix is watched from the revision
// Load read, and files are watched with fsnotify.
func WithWatch(etcd, files bool) Option {
	return func(o *options) { o.watchEtcd, o.watchFiles = etcd, files }
}

// WithPublishSchema makes Load store the JSON Schema of T at P/meta/schema
// (when it differs from what is there), so that the strata CLI validates
// pushes against the type the application really binds.
func WithPublishSchema() Option {
	return func(o *options) { o.publish = true }
}
