package etcd_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strataconf/strata/providers/etcd"
)

func TestLayoutParse(t *testing.T) {
	l := etcd.NewLayout("/app/prod/")
	cases := []struct {
		key, path string
		doc       bool
		err       string
	}{
		{"/app/prod/data/port", "port", false, ""},
		{"/app/prod/data/db/pool/max", "db.pool.max", false, ""},
		{"/app/prod/data/db.yaml", "db", true, ""},
		{"/app/prod/data/db/replica.JSON", "db.replica", true, ""},
		{"/app/prod/data/.toml", "", true, ""},
		{"/app/prod/data/db//port", "", false, "empty path segment"},
		{"/app/prod/data/db/", "", false, "empty path segment"},
		{"/app/prod/data/a.b/c", "", false, "contains a dot"},
		{"/app/prod/data/app.ini", "", false, "unknown document extension"},
		{"/app/prod/meta/version", "", false, "not under /app/prod/data/"},
	}
	for _, tc := range cases {
		e, err := l.Parse(tc.key)
		if tc.err != "" {
			var ke *etcd.KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want a KeyError with %q", tc.key, err, tc.err)
			}
			continue
		}
		if err != nil || e.Path != tc.path || (e.Codec != nil) != tc.doc {
			t.Errorf("Parse(%q) = %+v, %v; want path %q doc %v", tc.key, e, err, tc.path, tc.doc)
		}
		if !tc.doc && l.LeafKey(e.Path) != tc.key {
			t.Errorf("LeafKey(%q) = %q, want %q", e.Path, l.LeafKey(e.Path), tc.key)
		}
	}
}

func TestDataTree(t *testing.T) {
	l := etcd.NewLayout("/p")
	d := &etcd.Data{Revision: 7, KVs: map[string][]byte{
		"/p/data/db.yaml":     []byte("host: a\nport: 1\n"),
		"/p/data/db/port":     []byte("2"), // a leaf wins over the document
		"/p/data/name":        []byte("x"),
		"/p/data/name/nested": []byte("y"), // deeper wins over shallower
		"/p/data/svc":         []byte(`{"a":{"b":1}}`),
		"/p/data/svc/a.yaml":  []byte("b: 2\n"), // a deeper document wins over a leaf
	}}
	tree, sources, err := d.Tree(l)
	if err != nil {
		t.Fatal(err)
	}
	db := tree["db"].(map[string]any)
	if db["host"] != "a" || db["port"] != "2" || tree["name"].(map[string]any)["nested"] != "y" {
		t.Fatalf("tree %v", tree)
	}
	if svc := tree["svc"].(map[string]any)["a"].(map[string]any); svc["b"] != 2 {
		t.Fatalf("tree %v", tree)
	}
	if sources["db.port"] != "/p/data/db/port" || sources["db.host"] != "/p/data/db.yaml" || sources["name"] != "" ||
		sources["svc.a.b"] != "/p/data/svc/a.yaml" || sources["svc"] != "" {
		t.Fatalf("sources %v", sources)
	}
	bad := &etcd.Data{KVs: map[string][]byte{"/p/data/a.yaml": []byte("a: [1"), "/p/data/b//c": []byte("1")}}
	if _, _, err := bad.Tree(l); err == nil || !strings.Contains(err.Error(), "/p/data/a.yaml") || !strings.Contains(err.Error(), "/p/data/b//c") {
		t.Fatalf("bad keys: %v", err)
	}
}

// FuzzParse checks that key-to-path mapping never panics and that a leaf
// key maps back to itself.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"port", "db/pool", "db.yaml", "a//b", "a.b/c", ".json", "x/y.toml", "", "/", "é/ü"} {
		f.Add(s)
	}
	l := etcd.NewLayout("/p")
	f.Fuzz(func(t *testing.T, rel string) {
		key := l.Data() + rel
		e, err := l.Parse(key)
		if err != nil {
			return
		}
		if e.Codec == nil && l.LeafKey(e.Path) != key {
			t.Fatalf("leaf %q maps to %q and back to %q", key, e.Path, l.LeafKey(e.Path))
		}
		if strings.Contains(e.Path, "..") || strings.HasPrefix(e.Path, ".") || strings.HasSuffix(e.Path, ".") {
			t.Fatalf("key %q maps to malformed path %q", key, e.Path)
		}
	})
}

func TestCheckPrefix(t *testing.T) {
	for _, ok := range []string{"/a", "/strata/payments/prod", "/strata/payments/prod/", "/a.b/c-d_e"} {
		if err := etcd.CheckPrefix(ok); err != nil {
			t.Errorf("CheckPrefix(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", " ", "/", "//", "app/prod", "/a//b", "/a/ /b", "/a/./b", "/a/../b", "/a b", "/a\tb", "/a\x1b[31m"} {
		err := etcd.CheckPrefix(bad)
		if err == nil || !strings.Contains(err.Error(), "absolute key paths like /strata/app/prod") {
			t.Errorf("CheckPrefix(%q) = %v, want the rule", bad, err)
		}
	}
}

func TestLayoutKeys(t *testing.T) {
	l := etcd.NewLayout("/app/prod/")
	for _, tc := range []struct{ got, want string }{
		{l.DataKey("db/port"), "/app/prod/data/db/port"},
		{l.Release(7), "/app/prod/meta/releases/00000000000000000007"},
		{l.Release(0), "/app/prod/meta/releases/00000000000000000000"},
		{l.Checkpoint(32), "/app/prod/meta/checkpoints/00000000000000000032"},
		{l.CheckpointPart(32, 1), "/app/prod/meta/checkpoints/00000000000000000032/1"},
		{l.Instance("host-1"), "/app/prod/meta/instances/host-1"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	if rel, ok := l.RelKey("/app/prod/data/db/port"); !ok || rel != "db/port" {
		t.Errorf("RelKey = %q, %v", rel, ok)
	}
	if _, ok := l.RelKey("/app/prod/meta/version"); ok {
		t.Error("RelKey accepted a meta key")
	}
	// Release keys sort by number, so retention can delete a key range.
	if !(l.Release(9) < l.Release(10) && l.Release(99) < l.Release(100)) {
		t.Error("release keys do not sort by number")
	}
}

func TestLayoutParseKeys(t *testing.T) {
	l := etcd.NewLayout("/p")
	for _, n := range []int64{0, 1, 32, 1 << 40} {
		if got, ok := l.ParseRelease(l.Release(n)); !ok || got != n {
			t.Errorf("ParseRelease(Release(%d)) = %d, %v", n, got, ok)
		}
		if got, ok := l.ParseCheckpoint(l.Checkpoint(n)); !ok || got != n {
			t.Errorf("ParseCheckpoint(Checkpoint(%d)) = %d, %v", n, got, ok)
		}
	}
	if n, ok := l.ParseRelease("/p/meta/releases/12"); !ok || n != 12 {
		t.Errorf("an unpadded release key: %d, %v", n, ok)
	}
	for _, bad := range []string{"/p/meta/releases/", "/p/meta/releases/x", "/p/meta/releases/-1", "/q/meta/releases/1", l.Checkpoint(3)} {
		if _, ok := l.ParseRelease(bad); ok {
			t.Errorf("ParseRelease(%q) accepted", bad)
		}
	}
	for _, bad := range []string{l.CheckpointPart(3, 0), "/p/meta/checkpoints/", l.Release(3)} {
		if _, ok := l.ParseCheckpoint(bad); ok {
			t.Errorf("ParseCheckpoint(%q) accepted", bad)
		}
	}
	if id, ok := l.ParseInstance(l.Instance("a-1")); !ok || id != "a-1" {
		t.Errorf("ParseInstance = %q, %v", id, ok)
	}
	for _, bad := range []string{"/p/meta/instances/", "/p/meta/writes/a"} {
		if _, ok := l.ParseInstance(bad); ok {
			t.Errorf("ParseInstance(%q) accepted", bad)
		}
	}
}

func TestLeafRel(t *testing.T) {
	for path, want := range map[string]string{"port": "port", "db.pool.max": "db/pool/max"} {
		if got, err := etcd.LeafRel(path); err != nil || got != want {
			t.Errorf("LeafRel(%q) = %q, %v; want %q", path, got, err, want)
		}
		if l := etcd.NewLayout("/p"); l.DataKey(want) != l.LeafKey(path) {
			t.Errorf("DataKey(LeafRel(%q)) = %q, LeafKey = %q", path, l.DataKey(want), l.LeafKey(path))
		}
	}
	for path, msg := range map[string]string{
		"":      "is not a config path",
		"db/p":  "is not a config path",
		"a..b":  "has an empty path segment",
		".a":    "has an empty path segment",
		"a.":    "has an empty path segment",
		"a.b.":  "has an empty path segment",
		"x..":   "has an empty path segment",
		"a/b.c": "is not a config path",
	} {
		if _, err := etcd.LeafRel(path); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("LeafRel(%q) = %v, want %q", path, err, msg)
		}
	}
}
