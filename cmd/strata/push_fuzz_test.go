package main

import (
	"bytes"
	"maps"
	"strings"
	"testing"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// fuzzSchema has typed fields, a free-form map and secrets, one of them in
// a map of users.
const fuzzSchema = `{
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "ratio": {"type": "number"},
    "debug": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "db": {"type": "object", "properties": {
      "host": {"type": "string"},
      "password": {"type": "string", "x-secret": true}
    }},
    "token": {"type": "string", "writeOnly": true},
    "users": {"type": "object", "additionalProperties": {"type": "object", "properties": {
      "password": {"type": "string", "x-secret": true}, "role": {"type": "string"}}}}
  }
}`

// FuzzPushRoundTrip drives the push path without etcd: document bytes are
// decoded, built into content (tree.Build, as push does) and checked
// against the schema. Whatever is accepted must survive `get -o yaml` and
// `get -o json` pushed back unchanged, byte for byte, and no value at a
// secret path may appear in either output.
func FuzzPushRoundTrip(f *testing.F) {
	for _, seed := range []struct {
		format string
		doc    string
	}{
		{"yaml", "name: payments\nport: 8080\ndb:\n  host: db.internal\n  password: hunter2secret\ntags: [a, b]\n"},
		{"yaml", "labels:\n  team: core\n  zone: eu\ntoken: t0psecretvalue\nratio: 0.25\ndebug: true\n"},
		{"json", `{"name": "x", "port": 1, "labels": {"a.b": "c"}, "db": {"password": "pw-123456789"}}`},
		{"json", `{"tags": ["", " ", "\u00e9"], "name": "line\nbreak"}`},
		{"toml", "name = \"svc\"\nport = 443\n[db]\nhost = \"h\"\npassword = \"s3cr3t-s3cr3t\"\n"},
		{"yaml", "name: '123'\nport: 0x1F\n"},
		{"yaml", "users:\n  ann:\n    password: ann-secret-pw\n    role: admin\n  bob:\n    password: bob-secret-pw\n"},
		{"json", `{"ratio": 9007199254740993, "port": 9007199254740993}`},
	} {
		f.Add(seed.format, []byte(seed.doc))
	}
	sch, err := schema.Compile([]byte(fuzzSchema))
	if err != nil {
		f.Fatal(err)
	}
	secrets := sch.SecretPaths()
	si := &schemaInfo{doc: []byte(fuzzSchema), from: "fuzz", secrets: secrets}
	types, err := tree.NewTypes(si.doc)
	if err != nil {
		f.Fatal(err)
	}
	layout := etcdprov.NewLayout("/fuzz/app")
	codecs := map[string]codec.Codec{"yaml": codec.YAML, "json": codec.JSON, "toml": codec.TOML}

	f.Fuzz(func(t *testing.T, format string, b []byte) {
		c, ok := codecs[format]
		if !ok || len(b) > 4096 {
			return
		}
		doc, err := c.Unmarshal(b)
		if err != nil {
			return
		}
		content, err := tree.Build(layout, doc, nil, secrets)
		if err != nil || checkContent(layout, content, si, "fuzz") != nil {
			return // refused: nothing would be written
		}
		tr, leafPaths, err := tree.Of(layout, content)
		if err != nil {
			t.Fatalf("accepted content does not read back: %v\ncontent: %q", err, content)
		}
		shown := tree.MaskSecrets(types.Typed(tr, leafPaths), secrets)
		yamlOut, err := marshalYAML(shown)
		if err != nil {
			t.Fatalf("get -o yaml: %v", err)
		}
		jsonOut, err := marshalJSON(struct {
			Version  int64 `json:"version"`
			Revision int64 `json:"revision"`
			Config   any   `json:"config"`
		}{1, 2, shown})
		if err != nil {
			t.Fatalf("get -o json: %v", err)
		}

		for k, v := range content {
			if !keyIsSecretPath(secrets, k) || len(v) < 8 || strings.Contains(nonSecretText(content, secrets), v) {
				continue
			}
			if bytes.Contains(yamlOut, []byte(v)) || bytes.Contains(jsonOut, []byte(v)) {
				t.Fatalf("the secret at %s appears in get's output:\n%s\n%s", k, yamlOut, jsonOut)
			}
		}

		for name, out := range map[string][]byte{"yaml": yamlOut, "json": jsonOut} {
			dc := codec.YAML
			if name == "json" {
				dc = codec.JSON
			}
			again, err := dc.Unmarshal(out)
			if err != nil {
				t.Fatalf("get -o %s output does not parse: %v\n%s", name, err, out)
			}
			next, err := tree.Build(layout, tree.Unwrap(again), content, secrets)
			if err != nil {
				t.Fatalf("get -o %s output pushed back: %v\n%s", name, err, out)
			}
			if !maps.Equal(next, content) {
				t.Fatalf("get -o %s output pushed back changes the content:\nbefore %q\nafter  %q\noutput:\n%s", name, content, next, out)
			}
		}
	})
}

// keyIsSecretPath reports whether data key k lies at or under a secret
// path.
func keyIsSecretPath(secrets []string, k string) bool {
	return schema.IsSecret(secrets, strings.ReplaceAll(k, "/", "."))
}

// nonSecretText joins every key and every value not at a secret path, so
// that a secret that also appears there in the clear is not blamed on
// masking.
func nonSecretText(c config.Content, secrets []string) string {
	var b strings.Builder
	for k, v := range c {
		b.WriteString(k)
		b.WriteByte(0)
		if !keyIsSecretPath(secrets, k) {
			b.WriteString(v)
		}
		b.WriteByte(0)
	}
	return b.String()
}
