package codec_test

import (
	"fmt"
	"net"
	"time"
)

// Level is a custom encoding.TextUnmarshaler.
type Level int

var levelNames = []string{"debug", "info", "warn", "error"}

func (l *Level) UnmarshalText(b []byte) error {
	for i, n := range levelNames {
		if string(b) == n {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("unknown level %q", b)
}

func (l Level) MarshalText() ([]byte, error) {
	if l < 0 || int(l) >= len(levelNames) {
		return nil, fmt.Errorf("bad level %d", int(l))
	}
	return []byte(levelNames[l]), nil
}

type Server struct {
	Host string
	Port uint16
}

type DB struct {
	Host    string
	Port    int
	Timeout time.Duration
}

type Base struct {
	Name   string
	Region string `koanf:"zone"`
}

type Common struct {
	Owner string
}

// App has a field of every kind Bind supports.
type App struct {
	Base
	Common `koanf:",squash"`

	Str string
	I   int
	I8  int8
	I16 int16
	I32 int32
	I64 int64
	U   uint
	U8  uint8
	U16 uint16
	U32 uint32
	U64 uint64
	F32 float32
	F64 float64
	B   bool

	D   time.Duration
	T   time.Time
	IP  net.IP
	Lvl Level

	P  *int
	PS *Server

	DB       DB `koanf:"db"`
	Servers  []Server
	Tags     []string
	Ports    [3]int
	Labels   map[string]string
	Limits   map[string]int
	Services map[string]Server
	ByID     map[int]string `koanf:"by_id"`
	Any      any

	Skip   string `koanf:"-"`
	hidden string
}
