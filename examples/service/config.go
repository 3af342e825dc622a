package main

import (
	"log/slog"
	"net"
	"strconv"
	"time"
)

// Config is the service's configuration. Every field can come from any
// layer: the defaults below, service.yaml, SERVICE_* environment variables
// (SERVICE_DB__POOL_SIZE=20 → db.pool_size) and the etcd keys under
// PREFIX/data (PREFIX/data/db/pool_size). Load and every reload check the
// validate tags; a change that fails them is rejected and the running
// configuration stays.
type Config struct {
	// Listen is the HTTP server's address. It is read at start-up only: a
	// change is logged and applies at the next restart.
	Listen string `koanf:"listen" validate:"required"`
	// HTTP holds the server's timeouts.
	HTTP HTTP `koanf:"http"`
	// Greeting starts every answer of /v1/greeting.
	Greeting string `koanf:"greeting" validate:"required,max=100"`
	// DB is the database the service talks to; a change rebuilds the pool.
	DB DB `koanf:"db"`
	// Features are flags read on every request.
	Features Features `koanf:"features"`
}

// HTTP holds the HTTP server's timeouts. ReadHeaderTimeout and IdleTimeout
// are read at start-up; RequestTimeout and ShutdownTimeout whenever they are
// needed, so a change applies at once.
type HTTP struct {
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout" validate:"min=100ms,max=1m"`
	IdleTimeout       time.Duration `koanf:"idle_timeout" validate:"min=1s,max=10m"`
	RequestTimeout    time.Duration `koanf:"request_timeout" validate:"min=10ms,max=1m"`
	ShutdownTimeout   time.Duration `koanf:"shutdown_timeout" validate:"min=0s,max=5m"`
}

// DB is how the service reaches its database.
type DB struct {
	Host string `koanf:"host" validate:"required,hostname_rfc1123"`
	Port int    `koanf:"port" validate:"min=1,max=65535"`
	Name string `koanf:"name" validate:"required"`
	User string `koanf:"user" validate:"required"`
	// Password is secret: Strata masks it (******) in errors, logs and
	// health output, and LogValue leaves it out. Set it with
	// SERVICE_DB__PASSWORD or in etcd, never in service.yaml.
	Password string `koanf:"password" secret:"true" validate:"omitempty,min=8"`
	// PoolSize is the most connections the pool opens.
	PoolSize int `koanf:"pool_size" validate:"min=1,max=100"`
	// AcquireTimeout bounds the wait for a free connection.
	AcquireTimeout time.Duration `koanf:"acquire_timeout" validate:"min=1ms,max=30s"`
}

// Address is host:port.
func (d DB) Address() string { return net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) }

// LogValue makes a DB safe to log: the password is never printed, only
// whether one is set.
func (d DB) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", d.Address()),
		slog.String("name", d.Name),
		slog.String("user", d.User),
		slog.Bool("password_set", d.Password != ""),
		slog.Int("pool_size", d.PoolSize),
		slog.Duration("acquire_timeout", d.AcquireTimeout),
	)
}

// Features are feature flags.
type Features struct {
	// Shout answers in capitals.
	Shout bool `koanf:"shout"`
	// Maintenance makes /v1/greeting answer 503 while set.
	Maintenance bool `koanf:"maintenance"`
}

// defaults is the lowest layer (config.WithDefaults): every value the
// service can run with, so that the file, the environment and etcd only
// say what differs.
var defaults = Config{
	Listen: "127.0.0.1:8080",
	HTTP: HTTP{
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		RequestTimeout:    5 * time.Second,
		ShutdownTimeout:   10 * time.Second,
	},
	Greeting: "Hello",
	DB: DB{
		Port:           5432,
		PoolSize:       10,
		AcquireTimeout: 2 * time.Second,
	},
}

// serverSettings are the fields read only when the HTTP server starts.
type serverSettings struct {
	Listen            string
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
}

func serverSettingsOf(c *Config) serverSettings {
	return serverSettings{Listen: c.Listen, ReadHeaderTimeout: c.HTTP.ReadHeaderTimeout, IdleTimeout: c.HTTP.IdleTimeout}
}
