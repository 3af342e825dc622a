package schema_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// The test configuration: every shape and every mapped rule.

type gsDB struct {
	Host     string        `koanf:"host" validate:"required,hostname_rfc1123"`
	Port     int           `koanf:"port" validate:"min=1,max=65535"`
	Password string        `koanf:"password" secret:"true" validate:"min=8"`
	Timeout  time.Duration `koanf:"timeout"`
	Mode     string        `koanf:"mode" validate:"omitempty,oneof=ro rw"`
	Pool     uint8         `koanf:"pool"`
}

type gsServer struct {
	Host   string `koanf:"host" validate:"required,hostname"`
	URL    string `koanf:"url" validate:"omitempty,url"`
	Weight int    `koanf:"weight" validate:"gte=0,lte=100"`
}

type gsBase struct {
	Region string `koanf:"region" validate:"oneof=eu us"`
}

type gsTLS struct {
	Cert string `koanf:"cert" validate:"required,startswith=-----BEGIN"`
	Key  string `koanf:"key" secret:"true" validate:"required"`
}

type gsNode struct { // recursive
	Name     string    `koanf:"name" validate:"max=10"`
	Children []*gsNode `koanf:"children" validate:"dive"`
}

type gsApp struct {
	gsBase
	Name     string            `koanf:"name" validate:"required,alphanum,max=32"`
	Level    int               `koanf:"level" validate:"omitempty,oneof=1 2 3"`
	Ratio    float64           `koanf:"ratio" validate:"omitempty,gt=0,lt=1"`
	Workers  int               `koanf:"workers" validate:"gte=1"`
	Admin    string            `koanf:"admin" validate:"omitempty,email"`
	ID       string            `koanf:"id" validate:"omitempty,uuid"`
	Listen   string            `koanf:"listen" validate:"omitempty,ip"`
	Gateway  string            `koanf:"gateway" validate:"omitempty,ipv4"`
	Domain   string            `koanf:"domain" validate:"omitempty,fqdn"`
	Suffix   string            `koanf:"suffix" validate:"omitempty,endswith=.internal"`
	Code     string            `koanf:"code" validate:"omitempty,len=4,numeric"`
	Motto    string            `koanf:"motto" validate:"omitempty,contains=go"`
	Env      string            `koanf:"env" validate:"ne=test"`
	Debug    bool              `koanf:"debug"`
	DB       gsDB              `koanf:"db"`
	Servers  []gsServer        `koanf:"servers" validate:"required,min=1,dive"`
	Mirrors  []gsServer        `koanf:"mirrors"` // no dive: elements not validated
	Tags     []string          `koanf:"tags" validate:"max=3,dive,alpha"`
	Labels   map[string]string `koanf:"labels" validate:"dive,keys,alpha,endkeys,max=8"`
	Limits   map[string]int    `koanf:"limits" validate:"max=2,dive,min=0"`
	Started  time.Time         `koanf:"started"`
	Addr     net.IP            `koanf:"addr"`
	TLS      *gsTLS            `koanf:"tls"`
	Replicas *int              `koanf:"replicas" validate:"omitempty,min=1"`
	Token    string            `koanf:"token" secret:"true" validate:"required"`
	Schedule string            `koanf:"schedule" validate:"omitempty,cron"` // unsupported: kept in x-validate
	Extra    any               `koanf:"extra"`
	Tree     gsNode            `koanf:"tree"`
	Internal string            `koanf:"-"`
	hidden   string            //nolint:unused // unexported: not configuration
}

var golden = filepath.Join("testdata", "app.schema.json")

func TestGenerateGolden(t *testing.T) {
	got, err := schema.Generate(reflect.TypeFor[*gsApp]())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./schema -run TestGenerateGolden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Generate differs from %s (rerun with -update and review the diff):\n%s", golden, got)
	}
	again, _ := schema.Generate(reflect.TypeFor[gsApp]())
	if !bytes.Equal(got, again) {
		t.Error("Generate is not deterministic")
	}
	if _, err := schema.Compile(got); err != nil {
		t.Errorf("the golden schema does not compile: %v", err)
	}
}

// TestGenerateKeywords checks the mapping table on the generated document
// itself, one property at a time.
func TestGenerateKeywords(t *testing.T) {
	doc, err := schema.Generate(reflect.TypeFor[gsApp]())
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string // property path, "*" for items / additionalProperties
		key  string
		want any // JSON-decoded
	}{
		{"", "$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"", "additionalProperties", false},
		{"", "required", []any{"name", "workers", "db", "servers", "token", "region"}}, // inline fields last
		{"region", "enum", []any{"eu", "us"}},
		{"name", "minLength", 1.0},
		{"name", "maxLength", 32.0},
		{"name", "pattern", "^[a-zA-Z0-9]+$"},
		{"level", "if", map[string]any{"const": 0.0}},
		{"level", "else", map[string]any{"enum": []any{1.0, 2.0, 3.0}}},
		{"ratio", "else", map[string]any{"exclusiveMinimum": 0.0, "exclusiveMaximum": 1.0}},
		{"workers", "minimum", 1.0},
		{"admin", "else", map[string]any{"format": "email"}},
		{"id", "else", map[string]any{"format": "uuid"}},
		{"listen", "else", map[string]any{"anyOf": []any{map[string]any{"format": "ipv4"}, map[string]any{"format": "ipv6"}}}},
		{"gateway", "else", map[string]any{"format": "ipv4"}},
		{"suffix", "else", map[string]any{"pattern": `\.internal$`}},
		{"code", "else", map[string]any{"minLength": 4.0, "maxLength": 4.0, "pattern": `^[-+]?[0-9]+(?:\.[0-9]+)?$`}},
		{"motto", "else", map[string]any{"pattern": "go"}},
		{"env", "not", map[string]any{"const": "test"}},
		{"debug", "type", "boolean"},
		{"db", "required", []any{"host", "port", "password"}},
		{"db.host", "format", "hostname"},
		{"db.port", "type", "integer"},
		{"db.port", "maximum", 65535.0},
		{"db.password", "x-secret", true},
		{"db.password", "writeOnly", true},
		{"db.timeout", "pattern", schema.DurationPattern},
		{"db.pool", "maximum", 255.0},
		{"db.pool", "minimum", 0.0},
		{"servers", "minItems", 1.0},
		{"servers.*", "required", []any{"host"}},
		{"servers.*.weight", "maximum", 100.0},
		{"mirrors.*", "required", nil},
		{"mirrors.*.host", "format", nil},
		{"tags", "maxItems", 3.0},
		{"tags.*", "pattern", "^[a-zA-Z]+$"},
		{"labels", "propertyNames", map[string]any{"pattern": "^[a-zA-Z]+$"}},
		{"labels.*", "maxLength", 8.0},
		{"limits", "maxProperties", 2.0},
		{"limits.*", "minimum", 0.0},
		{"started", "format", "date-time"},
		{"addr", "anyOf", []any{map[string]any{"format": "ipv4"}, map[string]any{"format": "ipv6"}}},
		{"tls", "required", []any{"cert", "key"}},
		{"tls.cert", "pattern", `^-----BEGIN`},
		{"replicas", "minimum", 1.0},
		{"token", "x-secret", true},
		{"schedule", "x-validate", "omitempty,cron"},
		{"extra", "type", nil},
		{"tree", "$ref", "#/$defs/gsNode"}, // recursive type
		{"tree.children", "type", nil},
		{"", "$defs", map[string]any{"gsNode": map[string]any{
			"type": "object", "additionalProperties": false,
			"properties": map[string]any{
				"name":     map[string]any{"type": "string", "maxLength": 10.0},
				"children": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/$defs/gsNode"}},
			},
		}}},
		{"internal", "type", nil},
		{"hidden", "type", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path+"/"+tt.key, func(t *testing.T) {
			node := root
			if tt.path != "" {
				for _, k := range strings.Split(tt.path, ".") {
					var next any
					if k == "*" {
						next = node["items"]
						if next == nil {
							next = node["additionalProperties"]
						}
					} else {
						props, _ := node["properties"].(map[string]any)
						next = props[k]
					}
					n, ok := next.(map[string]any)
					if !ok {
						if tt.want != nil {
							t.Fatalf("no schema at %s", tt.path)
						}
						return
					}
					node = n
				}
			}
			if got := node[tt.key]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s %q = %#v, want %#v", tt.path, tt.key, got, tt.want)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	type withChan struct {
		C chan int `koanf:"c"`
	}
	for _, typ := range []reflect.Type{nil, reflect.TypeFor[int](), reflect.TypeFor[time.Time](), reflect.TypeFor[withChan]()} {
		if _, err := schema.Generate(typ); err == nil {
			t.Errorf("Generate(%v): no error", typ)
		}
	}
}

func TestSchemaSecretPaths(t *testing.T) {
	doc, err := schema.Generate(reflect.TypeFor[gsApp]())
	if err != nil {
		t.Fatal(err)
	}
	s, err := schema.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	want := schema.SecretPaths(reflect.TypeFor[gsApp]())
	got := s.SecretPaths()
	if strings.Join(got, ",") != "db.password,tls.key,token" {
		t.Errorf("SecretPaths() = %v", got)
	}
	if len(got) != len(want) {
		t.Errorf("SecretPaths() = %v, schema.SecretPaths = %v", got, want)
	}
	for _, p := range want {
		if !schema.IsSecret(got, p) {
			t.Errorf("%s missing from %v", p, got)
		}
	}
}
