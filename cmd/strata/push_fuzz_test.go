package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/internal/etcdtest"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// fuzzSchema has typed fields, a free-form map, an open object (db: keys
// it does not name are allowed, undescribed) and secrets, one of them in a
// map of users.
const fuzzSchema = `{
  "type": "object",
  "properties": {
    "name": {"type": "string"},
    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
    "ratio": {"type": "number"},
    "debug": {"type": "boolean"},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "db": {"type": "object", "maxProperties": 3, "properties": {
      "host": {"type": "string"},
      "password": {"type": "string", "x-secret": true, "minLength": 2}
    }},
    "token": {"type": "string", "writeOnly": true},
    "users": {"type": "object", "additionalProperties": {"type": "object", "properties": {
      "password": {"type": "string", "x-secret": true}, "role": {"type": "string"}}}}
  }
}`

// secretPlaceholder in a fuzzed document is replaced by the fuzzed secret,
// spelt in the Runic alphabet (runic), which no fixed text of strata's
// output holds: wherever that secret is shown, it is found.
const secretPlaceholder = "@S"

// runic spells b in the Runic block (U+16A0..U+16EF), one rune a byte; an
// empty b gives one rune, so that every secret is at least one character.
func runic(b []byte) string {
	if len(b) == 0 {
		return "ᛉ"
	}
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(0x16A0 + rune(c)%0x50)
	}
	return sb.String()
}

// runicRuns matches the runs of Runic letters in a text.
var runicRuns = regexp.MustCompile(`[\x{16A0}-\x{16EF}]+`)

// FuzzPushRoundTrip drives the push path end to end against a real
// (embedded) etcd: the document bytes are read as push reads them
// (docFlags.read: the YAML stream, duplicate-key, envelope and empty
// checks), pushed (checkShapes, tree.Build, the writer's schema check, the
// write), read back and rendered by the very code of `get -o json` and
// `get -o yaml` (readCurrent, current.render). Each output, pushed again
// the same way, must be accepted and change nothing, byte for byte. No
// value at a secret path may appear in any output: get's, the push diffs,
// the error of a refused push. Only a document marked as get's envelope
// may be unwrapped. Each exec uses its own prefix, deleted after it.
func FuzzPushRoundTrip(f *testing.F) {
	for _, seed := range []struct {
		format, doc, secret string
	}{
		{"yaml", "name: payments\nport: 8080\ndb:\n  host: db.internal\n  password: @S\ntags: [a, b]\n", "hunter2"},
		{"yaml", "labels:\n  team: core\n  zone: eu\ntoken: @S\nratio: 0.25\ndebug: true\n", "t"},
		{"json", `{"name": "x", "port": 1, "labels": {"a.b": "c"}, "db": {"password": "@S"}}`, "pw"},
		{"json", `{"tags": ["", " ", "\u00e9"], "name": "line\nbreak", "token": "@S@S"}`, ""},
		{"toml", "name = \"svc\"\nport = 443\n[db]\nhost = \"h\"\npassword = \"@S\"\n", "s3cr3t"},
		{"yaml", "name: '123'\nport: 0x1F\n", ""},
		{"yaml", "users:\n  ann:\n    password: @S\n    role: admin\n  bob:\n    password: x@S\n", "ann"},
		{"json", `{"ratio": 9007199254740993, "port": 9007199254740993}`, ""},
		// Refused: a failing secret, a mistyped one in an open object, too many tags.
		{"yaml", "db:\n  password: @S\n  port: 99999999\n", "a"},
		{"yaml", "db:\n  host: h\n  pasword: @S\n  x: 1\n  y: 2\n", "bb"},
		{"json", `{"db": {"pasword": "@S"}, "tags": ["a","b","c","d","e"], "port": 0}`, "c"},
		{"yaml", "tags: [@S]\nname: [@S]\n", "d"},
		// Not get's envelope: pushed as written.
		{"json", `{"version": 3, "revision": 9, "config": {"a": "b"}}`, ""},
		{"json", `{"kind": "strata-config", "version": 3, "revision": 9, "config": {"name": "n", "token": "@S"}}`, "e"},
		{"yaml", "a: 1\n---\nb: 2\n", ""},
		{"yaml", "# only a comment\n", ""},
	} {
		f.Add(seed.format, []byte(seed.doc), []byte(seed.secret))
	}
	sch, err := schema.Compile([]byte(fuzzSchema))
	if err != nil {
		f.Fatal(err)
	}
	secrets := sch.SecretPaths()
	schemaFile := filepath.Join(f.TempDir(), "schema.json")
	if err := os.WriteFile(schemaFile, []byte(fuzzSchema), 0o600); err != nil {
		f.Fatal(err)
	}
	c := etcdtest.New(f)
	cli := c.Client(f)
	endpoints := strings.Join(c.Endpoints(), ",")
	var execs atomic.Int64

	f.Fuzz(func(t *testing.T, format string, b, secret []byte) {
		if (format != "yaml" && format != "json" && format != "toml") || len(b) > 2048 || len(secret) > 64 {
			return
		}
		b = bytes.ReplaceAll(b, []byte(secretPlaceholder), []byte(runic(secret)))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		prefix := fmt.Sprintf("/fuzz/%d", execs.Add(1))
		defer cli.Delete(context.Background(), prefix+"/", clientv3.WithPrefix())
		var stdout bytes.Buffer
		a := &app{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stdout,
			g: globals{endpoints: endpoints, prefix: prefix, dialTimeout: 5 * time.Second, commandTimeout: 20 * time.Second}}
		s := &session{cli: cli, layout: etcdprov.NewLayout(prefix), a: a}
		var wf writeFlags
		wf.add(&cobra.Command{}, true)
		wf.schema, wf.author = schemaFile, "fuzz"
		// push reads a document, and pushes it, as `strata push -f - --format F`
		// does; a refusal is printed as the CLI prints it.
		push := func(format string, b []byte, allowEmpty bool) (map[string]any, error) {
			df := docFlags{file: "-", format: format, allowEmpty: allowEmpty}
			doc, err := df.read(bytes.NewReader(b))
			if err == nil {
				err = a.writeIn(ctx, s, []byte(fuzzSchema), &wf, a.pushWrite(doc, &wf))
			}
			if err != nil {
				printError(&stdout, err)
			}
			return doc, err
		}

		doc, err := push(format, b, false)
		if doc == nil {
			return // not a document push accepts: nothing to leak
		}
		leaked := leakCheck(secrets, doc)
		leaked(t, "the push", stdout.String())
		if raw, _ := codecOf(format).Unmarshal(b); !reflect.DeepEqual(raw, doc) && raw["kind"] != "strata-config" {
			t.Fatalf("a document that is not get's envelope was unwrapped: %q", b)
		}
		if err != nil {
			return // refused: nothing was written
		}
		w := s.writer(nil, false)
		content, version, rev, err := w.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cur, err := a.readCurrent(ctx, s, schemaFile, false)
		if err != nil {
			t.Fatalf("accepted content does not read back: %v\ncontent: %q", err, content)
		}
		for _, output := range []string{"json", "yaml"} {
			out, err := cur.render("", cur.shown, output)
			if err != nil {
				t.Fatalf("get -o %s: %v", output, err)
			}
			leaked(t, "get -o "+output, string(out))
			stdout.Reset()
			if _, err := push(output, out, len(content) == 0); err != nil {
				t.Fatalf("get -o %s output pushed back: %v\n%s\noutput:\n%s", output, err, stdout.String(), out)
			}
			leaked(t, "the push of get -o "+output, stdout.String())
			if want := fmt.Sprintf("no changes: version %d stays (revision %d)\n", version, rev); stdout.String() != want {
				t.Fatalf("get -o %s output pushed back: %q, want %q\noutput:\n%s", output, stdout.String(), want, out)
			}
			again, _, againRev, err := w.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if againRev != rev || !maps.Equal(again, content) {
				t.Fatalf("get -o %s output pushed back changes the content:\nbefore %q\nafter  %q\noutput:\n%s", output, content, again, out)
			}
		}
	})
}

// codecOf is the codec of a --format.
func codecOf(format string) codec.Codec {
	c, _ := codec.ForPath("x." + format)
	return c
}

// leakCheck returns a check that fails the test when an output shows a
// value doc holds at (or under) a secret path. It looks for the runs of
// Runic letters of those values (see runic): none of strata's fixed text
// holds one, and escaping leaves them as they are, so a secret of any
// length is found in quoted or escaped output too. A run that doc also
// holds in a key or a value at a path that is not secret is not looked for.
func leakCheck(secrets []string, doc map[string]any) func(t *testing.T, what, out string) {
	var secret, plain strings.Builder
	var walk func(v any, segs []string, under bool)
	walk = func(v any, segs []string, under bool) {
		under = under || atSecret(secrets, segs)
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				plain.WriteString(k + "\x00")
				walk(e, append(segs[:len(segs):len(segs)], k), under)
			}
		case []any:
			for i, e := range v {
				walk(e, append(segs[:len(segs):len(segs)], fmt.Sprint(i)), under)
			}
		default:
			if under {
				fmt.Fprintf(&secret, "%v\x00", v)
			} else {
				fmt.Fprintf(&plain, "%v\x00", v)
			}
		}
	}
	walk(doc, nil, false)
	var runs []string
	for _, r := range runicRuns.FindAllString(secret.String(), -1) {
		if !strings.Contains(plain.String(), r) {
			runs = append(runs, r)
		}
	}
	return func(t *testing.T, what, out string) {
		t.Helper()
		for _, r := range runs {
			if strings.Contains(out, r) {
				t.Fatalf("%s shows the secret %q:\n%s", what, r, out)
			}
		}
	}
}

// atSecret reports whether the path of segs is, or lies under, one of the
// secret paths (whose segment schema.Wildcard matches any key or index).
func atSecret(secrets []string, segs []string) bool {
	for _, p := range secrets {
		pat := strings.Split(p, ".")
		if len(segs) < len(pat) {
			continue
		}
		match := true
		for i, s := range pat {
			match = match && (s == schema.Wildcard || s == segs[i])
		}
		if match {
			return true
		}
	}
	return false
}
