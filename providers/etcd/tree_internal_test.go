package etcd

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/strataconf/strata/codec"
)

// Tree takes a fast path (leafTree) when every key is a leaf key and none
// lies above or below another; it must give what mounting in order of
// precedence (orderedTree) gives, and fall back to it in every other case.
func TestLeafTreeMatchesOrderedTree(t *testing.T) {
	l := NewLayout("/p")
	segs := []string{"a", "b", "c", "A"}
	rng := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for range 2000 {
		d := &Data{KVs: map[string][]byte{}}
		for range 1 + rng.IntN(6) {
			parts := make([]string, 1+rng.IntN(3))
			for i := range parts {
				parts[i] = segs[rng.IntN(len(segs))]
			}
			key := strings.Join(parts, "/")
			switch rng.IntN(10) {
			case 0:
				key += ".yaml"
			case 1:
				key += "//x" // does not fit the layout
			}
			d.KVs[l.DataKey(key)] = []byte(fmt.Sprintf("b: %d\n", rng.IntN(3)))
		}
		wantTree, wantSources, wantErr := d.orderedTree(l)
		gotTree, gotSources, gotErr := d.Tree(l)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) || !reflect.DeepEqual(gotTree, wantTree) || !reflect.DeepEqual(gotSources, wantSources) {
			t.Fatalf("keys %v:\nTree        %v %v %v\norderedTree %v %v %v", d.KVs, gotTree, gotSources, gotErr, wantTree, wantSources, wantErr)
		}
		if _, _, ok := d.leafTree(l); ok {
			fast++
			// As ReadLeaves lists them: the keys in one string, the
			// paths in another, in the same order, and no map.
			keys := slices.Sorted(maps.Keys(d.KVs))
			each := func(yield func(string, []byte) bool) {
				for _, k := range keys {
					if !yield(k, d.KVs[k]) {
						return
					}
				}
			}
			_, paths, ok := leafTree(l, each, nil)
			lv := &Leaves{paths: paths, keys: strings.Join(keys, ""), data: len(l.Data()), n: len(keys)}
			if !ok || lv.Len() != len(wantSources) || !reflect.DeepEqual(lv.Map(), wantSources) {
				t.Fatalf("keys %v: leaves %q %q, want %v", keys, lv.paths, lv.keys, wantSources)
			}
		}
	}
	if fast == 0 || fast == 2000 {
		t.Fatalf("the fast path was taken %d times in 2000: the cases do not cover both paths", fast)
	}
}

// parseBefore is Layout.Parse as it was before it was made to allocate
// less; Parse must agree with it on every key.
func parseBefore(l Layout, key string) (Entry, error) {
	rel, ok := strings.CutPrefix(key, l.Data())
	if !ok {
		return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("not under %s", l.Data())}
	}
	segs := strings.Split(rel, "/")
	last := segs[len(segs)-1]
	var c codec.Codec
	if ext := path.Ext(last); ext != "" {
		var known bool
		if c, known = codec.ForPath(last); !known {
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("unknown document extension %q (want one of %s)", ext, strings.Join(codec.Extensions(), ", "))}
		}
		segs[len(segs)-1] = strings.TrimSuffix(last, ext)
		if len(segs) == 1 && segs[0] == "" {
			return Entry{Path: "", Codec: c}, nil
		}
	}
	for _, s := range segs {
		switch {
		case s == "":
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("empty path segment")}
		case strings.Contains(s, "."):
			return Entry{}, &KeyError{Key: key, Err: fmt.Errorf("segment %q contains a dot; use / to separate path levels", s)}
		}
	}
	return Entry{Path: strings.Join(segs, "."), Codec: c}, nil
}

func TestParseMatchesBefore(t *testing.T) {
	l := NewLayout("/app/prod")
	keys := []string{
		"/app/prod/data/port", "/app/prod/data/db/pool/max", "/app/prod/data/db.yaml",
		"/app/prod/data/db/replica.JSON", "/app/prod/data/.toml", "/app/prod/data/.yaml.yaml",
		"/app/prod/data/a/.yaml", "/app/prod/data/db//port", "/app/prod/data/db/", "/app/prod/data/",
		"/app/prod/data", "/app/prod/data/a.b/c", "/app/prod/data/a.b.yaml", "/app/prod/data/app.ini",
		"/app/prod/data/x.", "/app/prod/meta/version", "/app/prodx/data/a", "/app/prod/datax/a",
		"/app/data/a", "", "/app/prod/data//", "/app/prod/data/é/ü", "/app/prod/data/a/b/c/d/e/f",
	}
	alphabet := []string{"a", "/", ".", "yaml", "json", "b", ""}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		var b strings.Builder
		b.WriteString("/app/prod/data/")
		for range rng.IntN(8) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		keys = append(keys, b.String())
	}
	for _, k := range keys {
		got, gerr := l.Parse(k)
		want, werr := parseBefore(l, k)
		if got.Path != want.Path || got.Codec != want.Codec || fmt.Sprint(gerr) != fmt.Sprint(werr) {
			t.Errorf("Parse(%q) = %+v, %v; before %+v, %v", k, got, gerr, want, werr)
		}
	}
}
