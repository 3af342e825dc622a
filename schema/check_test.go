package schema_test

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/schema"
)

var appSchema = sync.OnceValues(func() (*schema.Schema, error) {
	doc, err := schema.Generate(reflect.TypeFor[gsApp]())
	if err != nil {
		return nil, err
	}
	return schema.Compile(doc)
})

func mustAppSchema(t testing.TB) *schema.Schema {
	t.Helper()
	s, err := appSchema()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validDoc is a valid gsApp document with leaves typed as a YAML parser
// gives them.
func validDoc() map[string]any {
	return map[string]any{
		"region":  "eu",
		"name":    "payments",
		"workers": 4,
		"token":   "s3cr3t-token",
		"db": map[string]any{
			"host":     "db.internal",
			"port":     5432,
			"password": "long-enough-pw",
			"timeout":  "15s",
		},
		"servers": []any{map[string]any{"host": "a.example", "weight": 10}},
	}
}

// validLeaves is the same configuration as etcd leaf keys give it: every
// leaf is text, and servers/0/host is an index mapping.
func validLeaves() map[string]any {
	return map[string]any{
		"region":  "eu",
		"name":    "payments",
		"workers": "4",
		"token":   "s3cr3t-token",
		"db": map[string]any{
			"host":     "db.internal",
			"port":     "5432",
			"password": "long-enough-pw",
			"timeout":  "15s",
		},
		"servers": map[string]any{"0": map[string]any{"host": "a.example", "weight": "10"}},
	}
}

const absent = "\x00absent"

// with returns a deep copy of doc with the value at the dotted path set to v
// (deleted when v is absent). Missing parents are created as mappings; a
// numeric element indexes a []any, one past its end appends.
func with(doc map[string]any, path string, v any) map[string]any {
	return set(deepCopy(doc), strings.Split(path, "."), v).(map[string]any)
}

func set(cur any, keys []string, v any) any {
	k, last := keys[0], len(keys) == 1
	switch c := cur.(type) {
	case map[string]any:
		switch {
		case last && v == absent:
			delete(c, k)
		case last:
			c[k] = v
		default:
			c[k] = set(c[k], keys[1:], v)
		}
		return c
	case []any:
		n, err := strconv.Atoi(k)
		if err != nil || n > len(c) {
			return c
		}
		if n == len(c) {
			c = append(c, map[string]any{})
		}
		if last {
			c[n] = v
		} else {
			c[n] = set(c[n], keys[1:], v)
		}
		return c
	case nil:
		return set(map[string]any{}, keys, v)
	}
	return cur // a scalar: leave it
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = deepCopy(e)
		}
		return c
	}
	return v
}

// bindAndValidate is what the application does with a document: bind it to
// a zero gsApp, then Validate.
func bindAndValidate(tree map[string]any) error {
	var app gsApp
	if _, err := codec.Bind(tree, &app); err != nil {
		return err
	}
	return schema.Validate(&app)
}

// agree asserts the central property on one document: what Check accepts,
// the application accepts.
func agree(t *testing.T, s *schema.Schema, tree map[string]any) (checkErr, appErr error) {
	t.Helper()
	checkErr = s.Check(tree)
	appErr = bindAndValidate(tree)
	if checkErr == nil && appErr != nil {
		t.Errorf("Check accepted a document the application rejects: %v\ndocument: %v", appErr, tree)
	}
	return checkErr, appErr
}

func fieldErrors(t *testing.T, err error) []schema.FieldError {
	t.Helper()
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *schema.ValidationError", err, err)
	}
	return ve.Fields
}

func hasField(fields []schema.FieldError, path, rule string) (schema.FieldError, bool) {
	for _, f := range fields {
		if f.Path == path && f.Rule == rule {
			return f, true
		}
	}
	return schema.FieldError{}, false
}

func TestCheckValidDocuments(t *testing.T) {
	s := mustAppSchema(t)
	for name, doc := range map[string]map[string]any{"typed": validDoc(), "leaves": validLeaves()} {
		t.Run(name, func(t *testing.T) {
			checkErr, appErr := agree(t, s, doc)
			if checkErr != nil || appErr != nil {
				t.Fatalf("Check: %v; application: %v", checkErr, appErr)
			}
		})
	}
	if err := s.Check(nil); err == nil {
		t.Error("Check(nil) passed: required keys are missing")
	}
}

// TestCheckRules is the rule table: for each rule a document that passes and
// one that fails, with the path and keyword Check reports. Both documents
// also go through codec.Bind and Validate: the valid one must pass there, the
// invalid one must fail there (unless Check is deliberately stricter).
func TestCheckRules(t *testing.T) {
	s := mustAppSchema(t)
	long := strings.Repeat("a", 33)
	tests := []struct {
		rule          string // the validate rule exercised
		path          string // where the value is set
		valid         any
		invalid       any
		wantPath      string
		wantRule      string
		wantParam     string
		checkStricter bool // Check rejects what the application accepts
	}{
		{"required", "name", "x", absent, "name", "required", "", false},
		{"required (empty)", "name", "x", "", "name", "minLength", "1", false},
		{"required (zero number)", "workers", 1, absent, "workers", "required", "", false},
		{"required nested", "servers.0.host", "b.example", absent, "servers.0.host", "required", "", false},
		{"required struct", "db", validDoc()["db"], absent, "db", "required", "", false},
		{"required via nested rule", "db.port", 1, absent, "db.port", "required", "", false},
		{"required in pointer struct", "tls", map[string]any{"cert": "-----BEGIN X", "key": "k"}, map[string]any{"cert": "-----BEGIN X"}, "tls.key", "required", "", false},
		{"oneof string", "region", "us", "mars", "region", "enum", "eu us", false},
		{"oneof int", "level", 2, 4, "level", "enum", "1 2 3", false},
		{"oneof omitempty zero", "level", 0, "7", "level", "enum", "1 2 3", false},
		{"oneof omitempty string", "db.mode", "", "rx", "db.mode", "enum", "ro rw", false},
		{"alphanum", "name", "pay2", "pay ments", "name", "pattern", "^[a-zA-Z0-9]+$", false},
		{"max string", "name", long[:32], long, "name", "maxLength", "32", false},
		{"gt float", "ratio", 0.5, -0.5, "ratio", "exclusiveMinimum", "0", false},
		{"lt float", "ratio", "0.99", 1, "ratio", "exclusiveMaximum", "1", false},
		{"gte", "workers", 1, 0, "workers", "minimum", "1", false},
		{"min int", "db.port", 1, 0, "db.port", "minimum", "1", false},
		{"max int", "db.port", 65535, 70000, "db.port", "maximum", "65535", false},
		{"max int as text", "db.port", "65535", "70000", "db.port", "maximum", "65535", false},
		{"lte", "servers.0.weight", 100, 101, "servers.0.weight", "maximum", "100", false},
		{"uint8 range", "db.pool", 255, 256, "db.pool", "maximum", "255", false},
		{"min string", "db.password", "12345678", "short", "db.password", "minLength", "8", false},
		{"email", "admin", "ops@example.com", "nobody", "admin", "format", "email", false},
		{"uuid", "id", "123e4567-e89b-12d3-a456-426614174000", "123e4567", "id", "format", "uuid", false},
		{"ip", "listen", "::1", "999.1.1.1", "listen", "format", "ipv4|ipv6", false},
		{"ipv4", "gateway", "10.0.0.1", "::1", "gateway", "format", "ipv4", false},
		{"hostname_rfc1123", "db.host", "1db.internal", "db_internal", "db.host", "format", "hostname", false},
		{"hostname_rfc1123 pattern", "db.host", "db.internal", "db.internal.", "db.host", "pattern", "", false},
		{"hostname (RFC 952)", "servers.0.host", "a-1.example", "1a.example", "servers.0.host", "pattern", "", false},
		{"fqdn", "domain", "example.com", "localhost", "domain", "pattern", "", false},
		{"url", "servers.0.url", "https://a.example/x", "not a url", "servers.0.url", "format", "uri", false},
		{"endswith", "suffix", "db.internal", "db.external", "suffix", "pattern", `\.internal$`, false},
		{"len", "code", "1234", "123", "code", "minLength", "4", false},
		{"numeric", "code", "-1.5", "12a4", "code", "pattern", "", false},
		{"contains", "motto", "let's go", "hello", "motto", "pattern", "go", false},
		{"startswith", "tls", map[string]any{"cert": "-----BEGIN X", "key": "k"}, map[string]any{"cert": "BEGIN", "key": "k"}, "tls.cert", "pattern", "^-----BEGIN", false},
		{"ne", "env", "prod", "test", "env", "not", "test", false},
		{"min items", "servers", []any{map[string]any{"host": "a"}}, []any{}, "servers", "minItems", "1", false},
		{"max items", "tags", []any{"a", "b", "c"}, []any{"a", "b", "c", "d"}, "tags", "maxItems", "3", false},
		{"dive alpha", "tags", `["a","b"]`, `["a","b1"]`, "tags.1", "pattern", "^[a-zA-Z]+$", false},
		{"dive keys alpha", "labels", map[string]any{"env": "dev"}, map[string]any{"env1": "dev"}, "labels.env1", "pattern", "^[a-zA-Z]+$", false},
		{"dive map value", "labels", map[string]any{"env": "dev"}, map[string]any{"env": "development"}, "labels.env", "maxLength", "8", false},
		{"max properties", "limits", map[string]any{"a": 1, "b": 2}, map[string]any{"a": 1, "b": 2, "c": 3}, "limits", "maxProperties", "2", false},
		{"dive min", "limits", `{"cpu": 0}`, `{"cpu": -1}`, "limits.cpu", "minimum", "0", false},
		{"pointer min", "replicas", 3, 0, "replicas", "minimum", "1", false},
		{"no dive: elements unchecked", "mirrors", []any{map[string]any{"host": ""}}, []any{map[string]any{"host": "", "port": 1}}, "mirrors.0.port", "additionalProperties", "", true},
		{"secret required", "token", "t", absent, "token", "required", "", false},
		{"unknown key", "nmae", absent, "x", "nmae", "additionalProperties", "", true},
		{"unknown nested key", "db.extra", absent, 1, "db.extra", "additionalProperties", "", true},
		// types, as codec.Bind reads them
		{"int from text", "workers", "12", "abc", "workers", "type", "integer", false},
		{"int not float", "workers", 3.0, 2.5, "workers", "type", "integer", false},
		{"bool from text", "debug", "true", "yes", "debug", "type", "boolean", false},
		{"duration", "db.timeout", "1m30s", "15", "db.timeout", "pattern", schema.DurationPattern, false},
		{"time", "started", "2024-01-02T03:04:05Z", "yesterday", "started", "format", "date-time", false},
		{"net.IP", "addr", "10.1.2.3", "10.1.2", "addr", "format", "ipv4|ipv6", false},
		{"struct from JSON text", "tls", `{"cert": "-----BEGIN X", "key": "k"}`, `{"cert": 1`, "tls", "type", "object", false},
		{"array from index mapping", "tags", map[string]any{"0": "a", "1": "b"}, map[string]any{"0": "a", "2": "b"}, "tags", "type", "array", false},
		{"interface: anything", "extra", map[string]any{"x": []any{1, "y"}}, absent, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			for _, base := range []map[string]any{validDoc(), validLeaves()} {
				if strings.HasPrefix(tt.path, "servers.") {
					base["servers"] = validDoc()["servers"] // index paths into a []any
				}
				if tt.valid != absent || tt.wantRule != "" {
					doc := with(base, tt.path, tt.valid)
					checkErr, appErr := agree(t, s, doc)
					if checkErr != nil || appErr != nil {
						t.Errorf("valid %v: Check: %v; application: %v", tt.valid, checkErr, appErr)
					}
				}
				if tt.wantRule == "" {
					continue
				}
				doc := with(base, tt.path, tt.invalid)
				checkErr, appErr := agree(t, s, doc)
				if checkErr == nil {
					t.Fatalf("invalid %v: Check passed", tt.invalid)
				}
				if appErr == nil && !tt.checkStricter {
					t.Errorf("invalid %v: the application accepts it (test case is wrong)", tt.invalid)
				}
				fields := fieldErrors(t, checkErr)
				f, ok := hasField(fields, tt.wantPath, tt.wantRule)
				if !ok {
					t.Fatalf("invalid %v: want %s failing %s, got %v", tt.invalid, tt.wantPath, tt.wantRule, checkErr)
				}
				if tt.wantParam != "" && f.Param != tt.wantParam {
					t.Errorf("%s %s: Param = %q, want %q", f.Path, f.Rule, f.Param, tt.wantParam)
				}
			}
		})
	}
}

// TestCheckAgreesWithValidate sweeps many values through many paths: every
// document Check accepts must bind and pass Validate, and every document the
// application rejects must be rejected by Check.
func TestCheckAgreesWithValidate(t *testing.T) {
	s := mustAppSchema(t)
	values := []any{
		absent, "", " ", "0", "1", "-1", "2", "3", "8", "100", "101", "255", "256", "65535", "65536",
		"abc", "a b", "ABC1", "true", "false", "yes", "1.5", "-0.5", "0.5", "1e3", "15s", "0", "1h2m",
		"ro", "rw", "eu", "us", "test", "prod", "ops@example.com", "a@b", "::1", "10.0.0.1", "1.2.3",
		"::ffff:1.2.3.4", "fe80::1%eth0", "http://x", "https://a.example/p?q=1", "mailto:a@b.c", "//x",
		"example.com", "example.com.", "localhost", "1a.b", "a_b.c", "x.internal", ".internal", "1234",
		"12.5", "+1", "123e4567-e89b-12d3-a456-426614174000", "123E4567-E89B-12D3-A456-426614174000",
		"abcdefghijk", "2024-01-02T03:04:05Z", "2024-01-02t03:04:05z", "2024-01-02", "-----BEGIN X", "go", "gopher",
		`["a","b"]`, `[1,2]`, `{"a":1}`, `{}`, `[]`, "[", "{",
		0, 1, -1, 2, 100, 101, 255, 256, 65535, 70000, 0.5, 1.0, 2.5, -0.5, true, false,
		[]any{}, []any{"a"}, []any{"a", "b", "c", "d"}, []any{1}, map[string]any{}, map[string]any{"a": "b"},
		map[string]any{"0": "x"}, map[string]any{"a": 1, "b": 2, "c": 3},
	}
	paths := []string{
		"region", "name", "level", "ratio", "workers", "admin", "id", "listen", "gateway", "domain",
		"suffix", "code", "motto", "env", "debug", "db", "db.host", "db.port", "db.password", "db.timeout",
		"db.mode", "db.pool", "servers", "servers.0", "servers.0.host", "servers.0.url", "servers.0.weight",
		"mirrors", "tags", "labels", "limits", "started", "addr", "tls", "tls.cert", "tls.key", "replicas",
		"token", "extra", "tree", "tree.name", "tree.children", "tree.children.0",
		"labels.env", "labels.Bad1", "limits.cpu", "tags.0", "servers.1", "servers.0.extra", "db.extra",
		"tls.extra", "mirrors.0", "mirrors.0.host", "tree.children.0.name", "tree.children.0.children.0.name",
		"tree.children.0.children.0.x",
		// not "schedule": its rule (cron) is not covered, see x-validate
	}
	accepted, rejected := 0, 0
	for _, base := range []map[string]any{validDoc(), validLeaves()} {
		for _, p := range paths {
			for _, v := range values {
				checkErr, _ := agree(t, s, with(base, p, v))
				if checkErr == nil {
					accepted++
				} else {
					rejected++
				}
			}
		}
	}
	t.Logf("%d documents accepted, %d rejected", accepted, rejected)
	if accepted == 0 || rejected == 0 {
		t.Errorf("sweep is degenerate: %d accepted, %d rejected", accepted, rejected)
	}
}

func TestCheckLeafCoercion(t *testing.T) {
	s := mustAppSchema(t)
	tests := []struct {
		name     string
		path     string
		value    any
		wantPath string // "" for valid
		wantRule string
		wantVal  string
	}{
		{"int text", "db.port", "5432", "", "", ""},
		{"int text with spaces", "db.port", " 5432 ", "", "", ""},
		{"int text not a number", "db.port", "abc", "db.port", "type", "abc"},
		{"int text fraction", "db.port", "54.5", "db.port", "type", "54.5"},
		{"float text", "ratio", "0.25", "", "", ""},
		{"bool text", "debug", "TRUE", "", "", ""},
		{"bool text invalid", "debug", "on", "debug", "type", "on"},
		{"array JSON text", "tags", `["a", "b"]`, "", "", ""},
		{"array JSON text bad", "tags", `["a",`, "tags", "type", `["a",`},
		{"object JSON text", "limits", `{"cpu": 2}`, "", "", ""},
		{"map values text", "limits", map[string]any{"cpu": "2"}, "", "", ""},
		{"index mapping of structs", "servers", map[string]any{"0": map[string]any{"host": "a"}, "1": map[string]any{"host": "b", "weight": "5"}}, "", "", ""},
		{"index mapping element error", "servers", map[string]any{"0": map[string]any{"host": "a", "weight": "500"}}, "servers.0.weight", "maximum", "500"},
		{"number where text wanted", "name", 12, "", "", ""},
		{"bool where text wanted", "name", true, "", "", ""},
		{"null is absent", "admin", nil, "", "", ""},
		{"typed time", "started", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "", "", ""},
		{"typed duration", "db.timeout", 90 * time.Second, "", "", ""},
		{"typed net.IP", "addr", net.ParseIP("10.0.0.1"), "", "", ""},
		{"typed []string", "tags", []string{"a", "b"}, "", "", ""},
		{"typed []string element error", "tags", []string{"a", "b2"}, "tags.1", "pattern", "b2"},
		{"typed map[string]int", "limits", map[string]int{"cpu": -1}, "limits.cpu", "minimum", "-1"},
		{"typed uint8", "db.pool", uint8(7), "", "", ""},
		{"typed float32", "ratio", float32(0.25), "", "", ""},
		{"typed pointer", "replicas", func() *int { n := 0; return &n }(), "replicas", "minimum", "0"},
		{"unsupported Go value", "name", struct{}{}, "name", "type", "{}"},
		{"null required is missing", "name", nil, "name", "required", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := with(validDoc(), tt.path, tt.value)
			checkErr, appErr := agree(t, s, doc)
			if tt.wantPath == "" {
				if checkErr != nil {
					t.Fatalf("Check: %v (application: %v)", checkErr, appErr)
				}
				return
			}
			if checkErr == nil {
				t.Fatal("Check passed")
			}
			f, ok := hasField(fieldErrors(t, checkErr), tt.wantPath, tt.wantRule)
			if !ok {
				t.Fatalf("want %s failing %s, got %v", tt.wantPath, tt.wantRule, checkErr)
			}
			if f.Value != tt.wantVal {
				t.Errorf("Value = %q, want %q", f.Value, tt.wantVal)
			}
		})
	}
	// the caller's tree is not modified
	doc := validLeaves()
	_ = s.Check(doc)
	if !reflect.DeepEqual(doc, validLeaves()) {
		t.Errorf("Check modified its argument: %v", doc)
	}
}

func TestCheckSecretsMasked(t *testing.T) {
	s := mustAppSchema(t)
	const secret = "Sekr1t-Value"
	tests := []struct {
		name, path string
		value      any
		wantPath   string
		wantRule   string
	}{
		{"too short", "db.password", "Sekr1t", "db.password", "minLength"},
		{"wrong type", "db.password", map[string]any{"x": secret}, "db.password", "type"},
		{"wrong type in list", "token", []any{secret}, "token", "type"},
		{"required", "token", absent, "token", "required"},
		{"empty", "token", "", "token", "minLength"},
		{"pointer struct member", "tls", map[string]any{"cert": "x", "key": []any{secret}}, "tls.key", "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(with(validDoc(), tt.path, tt.value))
			if err == nil {
				t.Fatal("Check passed")
			}
			if strings.Contains(err.Error(), "Sekr1t") {
				t.Errorf("secret in error text: %v", err)
			}
			f, ok := hasField(fieldErrors(t, err), tt.wantPath, tt.wantRule)
			if !ok {
				t.Fatalf("want %s failing %s, got %v", tt.wantPath, tt.wantRule, err)
			}
			if !f.Secret || f.Value != schema.Masked {
				t.Errorf("got %+v, want a masked secret", f)
			}
			if s := fmt.Sprintf("%+v", fieldErrors(t, err)); strings.Contains(s, "Sekr1t") {
				t.Errorf("secret in fields: %s", s)
			}
		})
	}
}

func TestCheckErrorShape(t *testing.T) {
	s := mustAppSchema(t)
	doc := validDoc()
	delete(doc, "name")
	doc["db"].(map[string]any)["port"] = 70000
	doc["servers"] = []any{map[string]any{"host": "a", "weight": 101, "x": 1}}
	doc["zzz"] = "unknown"
	err := s.Check(doc)
	want := "invalid config: db.port: failed maximum=65535 (value 70000); name: failed required (value \"\"); " +
		"servers.0.weight: failed maximum=100 (value 101); servers.0.x: failed additionalProperties (value ******); " +
		"zzz: failed additionalProperties (value ******)"
	if err == nil || err.Error() != want {
		t.Errorf("Check:\n got %v\nwant %s", err, want)
	}
}

func TestCompileHandWritten(t *testing.T) {
	const doc = `{
	  "$defs": {
	    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
	    "creds": {"type": "object", "minProperties": 2, "x-secret": true}
	  },
	  "type": "object",
	  "properties": {
	    "port": {"$ref": "#/$defs/port"},
	    "ports": {"type": "array", "items": {"$ref": "#/$defs/port"}, "uniqueItems": true},
	    "creds": {"$ref": "#/$defs/creds"},
	    "opts": {"type": "object", "minProperties": 3, "properties": {"pw": {"type": "string", "writeOnly": true}}},
	    "pick": {"oneOf": [{"type": "integer"}, {"type": "boolean"}]},
	    "never": false,
	    "dep": {"type": "object", "dependentRequired": {"a": ["b"]}},
	    "x-unknown": {"x-vendor": {"anything": [1, 2]}}
	  }
	}`
	s, err := schema.Compile([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.SecretPaths(), ","); got != "creds,opts.pw" {
		t.Errorf("SecretPaths = %s", got)
	}
	tests := []struct {
		name     string
		tree     map[string]any
		wantPath string
		wantRule string
		wantVal  string
	}{
		{"ref coerces", map[string]any{"port": "80"}, "", "", ""},
		{"ref bound", map[string]any{"port": "0"}, "port", "minimum", "0"},
		{"ref in items", map[string]any{"ports": `[80, "x"]`}, "ports.1", "type", "x"},
		{"unique items", map[string]any{"ports": []any{"80", "80"}}, "ports", "uniqueItems", "[80 80]"},
		{"secret object", map[string]any{"creds": map[string]any{"user": "Sekr1t"}}, "creds", "minProperties", schema.Masked},
		{"secret inside a shown value", map[string]any{"opts": map[string]any{"pw": "Sekr1t"}}, "opts", "minProperties", "map[pw:******]"},
		{"oneOf none", map[string]any{"pick": "x"}, "pick", "type", "x"},
		{"false schema", map[string]any{"never": 1}, "never", "false", "1"},
		{"dependentRequired", map[string]any{"dep": map[string]any{"a": 1}}, "dep", "dependentRequired", "map[a:******]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Check(tt.tree)
			if tt.wantPath == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("Check passed")
			}
			if strings.Contains(err.Error(), "Sekr1t") {
				t.Errorf("secret in error text: %v", err)
			}
			f, ok := hasField(fieldErrors(t, err), tt.wantPath, tt.wantRule)
			if !ok {
				t.Fatalf("want %s failing %s, got %v", tt.wantPath, tt.wantRule, err)
			}
			if f.Value != tt.wantVal {
				t.Errorf("Value = %q, want %q", f.Value, tt.wantVal)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	for _, doc := range []string{
		``,
		`{`,
		`{"type": 5}`,
		`{"type": "object"} x`,
		`{"$ref": "https://example.com/schema.json"}`,
		`{"$ref": "file:///etc/passwd"}`,
		`{"pattern": "("}`,
	} {
		if _, err := schema.Compile([]byte(doc)); err == nil {
			t.Errorf("Compile(%q): no error", doc)
		}
	}
}

func TestCheckConcurrent(t *testing.T) {
	s := mustAppSchema(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			doc := with(validLeaves(), "db.port", strconv.Itoa(60000+i*1000))
			err := s.Check(doc)
			if (60000+i*1000 > 65535) != (err != nil) {
				t.Errorf("port %d: %v", 60000+i*1000, err)
			}
		}()
	}
	wg.Wait()
}
