package secret_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strataconf/strata/config/secret"
)

var keyIDRE = regexp.MustCompile(`^k\d{8}-[0-9a-f]{6}$`)

// fileJSON is the key file format, as the package documents it.
type fileJSON struct {
	Current string `json:"current"`
	Keys    []struct {
		ID      string `json:"id"`
		Key     string `json:"key"`
		Created string `json:"created"`
	} `json:"keys"`
}

func readFile(t *testing.T, path string) (fileJSON, [][]byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("key file is not JSON: %v", err)
	}
	var keys [][]byte
	for _, k := range f.Keys {
		b, err := base64.StdEncoding.DecodeString(k.Key)
		if err != nil || len(b) != 32 {
			t.Fatalf("key %s: %d bytes, %v", k.ID, len(b), err)
		}
		keys = append(keys, b)
	}
	return f, keys
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if m := fi.Mode().Perm(); m != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, m)
	}
}

// checkClean fails when err's text contains any of keys.
func checkClean(t *testing.T, err error, keys [][]byte) {
	t.Helper()
	for _, l := range leaks("", keys...) {
		if strings.Contains(err.Error(), l) {
			t.Fatalf("error %q contains key material", err)
		}
	}
}

func TestGenerateKeyFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "strata.key")
	before := time.Now().UTC().Add(-time.Second)
	id, err := secret.GenerateKeyFile(path)
	if err != nil {
		t.Fatalf("GenerateKeyFile: %v", err)
	}
	if !keyIDRE.MatchString(id) {
		t.Errorf("key id %q is not k<yyyymmdd>-<6 hex>", id)
	}
	if today := "k" + time.Now().UTC().Format("20060102") + "-"; !strings.HasPrefix(id, today) && !strings.HasPrefix(id, "k"+before.Format("20060102")+"-") {
		t.Errorf("key id %q does not carry today's UTC date", id)
	}
	checkMode(t, path)
	f, keys := readFile(t, path)
	if f.Current != id || len(f.Keys) != 1 || f.Keys[0].ID != id {
		t.Fatalf("key file = %+v, want one key %s, current", f, id)
	}
	created, err := time.Parse(time.RFC3339, f.Keys[0].Created)
	if err != nil || created.Before(before) || created.After(time.Now().Add(time.Second)) {
		t.Errorf("created = %q (%v), want now in RFC 3339", f.Keys[0].Created, err)
	}

	// O_EXCL: a second GenerateKeyFile refuses and leaves the file as it was.
	orig, _ := os.ReadFile(path)
	_, err = secret.GenerateKeyFile(path)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second GenerateKeyFile: %v, want an error wrapping fs.ErrExist", err)
	}
	if !strings.Contains(err.Error(), "never overwritten") {
		t.Errorf("error %q does not say the file is never overwritten", err)
	}
	checkClean(t, err, keys)
	if now, _ := os.ReadFile(path); string(now) != string(orig) {
		t.Fatal("the second GenerateKeyFile changed the file")
	}

	// Its keys seal and open, through LoadKeyFile and KeyFile alike.
	ring, err := secret.LoadKeyFile(path)
	if err != nil {
		t.Fatalf("LoadKeyFile: %v", err)
	}
	if got := ring.IDs(); !slices.Equal(got, []string{id}) {
		t.Errorf("IDs = %v", got)
	}
	sealed := mustSeal(t, secret.KeyFile(path), testPath, testPlain)
	if kid, _ := secret.KeyID(sealed); kid != id {
		t.Errorf("sealed with %q, want %q", kid, id)
	}
	if got, err := secret.Open(ctx, ring, testPrefix, testPath, sealed); err != nil || got != testPlain {
		t.Fatalf("Open = %q, %v", got, err)
	}
}

func TestGenerateKeyFileNoDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "strata.key")
	if _, err := secret.GenerateKeyFile(path); err == nil {
		t.Fatal("GenerateKeyFile in a missing directory worked")
	}
}

func TestAddKey(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.key")
	id1, err := secret.GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f1, keys1 := readFile(t, path)
	old := mustSeal(t, secret.KeyFile(path), testPath, testPlain)

	id2, err := secret.AddKey(path)
	if err != nil {
		t.Fatalf("AddKey: %v", err)
	}
	if id2 == id1 || !keyIDRE.MatchString(id2) {
		t.Fatalf("AddKey = %q (first key %q)", id2, id1)
	}
	checkMode(t, path)
	f2, keys2 := readFile(t, path)
	if f2.Current != id2 || len(f2.Keys) != 2 || f2.Keys[0].ID != id1 || f2.Keys[1].ID != id2 {
		t.Fatalf("key file after AddKey = current %s, keys %+v", f2.Current, f2.Keys)
	}
	if string(keys2[0]) != string(keys1[0]) || f2.Keys[0].Created != f1.Keys[0].Created {
		t.Fatal("AddKey changed the old key")
	}
	if string(keys2[1]) == string(keys1[0]) {
		t.Fatal("the new key equals the old one")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only the key file (no temporary file left)", entries)
	}

	ring, err := secret.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := secret.Open(ctx, ring, testPrefix, testPath, old); err != nil || got != testPlain {
		t.Fatalf("a value sealed with the old key: Open = %q, %v", got, err)
	}
	sealed := mustSeal(t, ring, testPath, testPlain)
	if kid, _ := secret.KeyID(sealed); kid != id2 {
		t.Errorf("sealed with %q after AddKey, want the new %q", kid, id2)
	}

	id3, err := secret.AddKey(path)
	if err != nil || id3 == id2 || id3 == id1 {
		t.Fatalf("second AddKey = %q, %v", id3, err)
	}
	ring, err = secret.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := ring.IDs(); len(got) != 3 {
		t.Errorf("IDs = %v, want 3 keys", got)
	}
	for _, v := range []string{old, sealed} {
		if got, err := secret.Open(ctx, ring, testPrefix, testPath, v); err != nil || got != testPlain {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
}

func TestAddKeyThroughSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.key")
	if _, err := secret.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink("strata.key", link); err != nil {
		t.Fatal(err)
	}
	id, err := secret.AddKey(link)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the link was replaced: %v", err)
	}
	if f, _ := readFile(t, path); f.Current != id {
		t.Fatalf("the file the link names has current %s, want %s", f.Current, id)
	}
}

func TestKeyFileReadableByOthers(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "strata.key")
	if _, err := secret.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	_, keys := readFile(t, path)
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o620, 0o601} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("key file %s is readable by group or others (mode %04o): chmod 600 %s", path, mode, path)
		_, err := secret.LoadKeyFile(path)
		if !errors.Is(err, secret.ErrKeyFile) || !strings.Contains(err.Error(), want) {
			t.Fatalf("LoadKeyFile of a %04o file: %v, want ErrKeyFile and %q", mode, err, want)
		}
		checkClean(t, err, keys)
		if _, _, err := secret.KeyFile(path).Current(ctx); !errors.Is(err, secret.ErrKeyFile) {
			t.Errorf("KeyFile(%04o file).Current: %v", mode, err)
		}
		if _, err := secret.AddKey(path); !errors.Is(err, secret.ErrKeyFile) {
			t.Errorf("AddKey(%04o file): %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := secret.LoadKeyFile(path); err != nil {
		t.Fatalf("a 0400 key file: %v", err)
	}
}

func TestBadKeyFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	k1 := base64.StdEncoding.EncodeToString(key1)
	k2 := base64.StdEncoding.EncodeToString(key2)
	short := base64.StdEncoding.EncodeToString(key1[:16])
	long := base64.StdEncoding.EncodeToString(append(key1[:32:32], key2...))
	for _, tc := range []struct{ name, content string }{
		{"empty", ``},
		{"not JSON", `current = k1`},
		{"broken JSON after a key", `{"current": "k1", "keys": [{"id": "k1", "key": "` + k1 + `"`},
		{"control character in a key", `{"current": "k1", "keys": [{"id": "k1", "key": "` + k1[:10] + "\x01" + k1[10:] + `"}]}`},
		{"trailing data", `{"current": "k1", "keys": [{"id": "k1", "key": "` + k1 + `"}]} ` + k2},
		{"keys not a list", `{"current": "k1", "keys": {"id": "k1", "key": "` + k1 + `"}}`},
		{"key a number", `{"current": "k1", "keys": [{"id": "k1", "key": 1234567890123}]}`},
		{"array", `[]`},
		{"no keys", `{"current": "k1", "keys": []}`},
		{"no current", `{"keys": [{"id": "k1", "key": "` + k1 + `"}]}`},
		{"current not a key", `{"current": "k3", "keys": [{"id": "k1", "key": "` + k1 + `"}, {"id": "k2", "key": "` + k2 + `"}]}`},
		{"short key", `{"current": "k1", "keys": [{"id": "k1", "key": "` + short + `"}]}`},
		{"long key", `{"current": "k1", "keys": [{"id": "k1", "key": "` + long + `"}]}`},
		{"base64url key", `{"current": "k1", "keys": [{"id": "k1", "key": "` + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 32)) + `"}]}`},
		{"not base64", `{"current": "k1", "keys": [{"id": "k1", "key": "` + k1[:20] + `!` + k1[21:] + `"}]}`},
		{"duplicate id", `{"current": "k1", "keys": [{"id": "k1", "key": "` + k1 + `"}, {"id": "k1", "key": "` + k2 + `"}]}`},
		{"id with colon", `{"current": "k:1", "keys": [{"id": "k:1", "key": "` + k1 + `"}]}`},
		{"empty id", `{"current": "", "keys": [{"id": "", "key": "` + k1 + `"}]}`},
		{"bad created", `{"current": "k1", "keys": [{"id": "k1", "key": "` + k1 + `", "created": "yesterday"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".key")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := secret.LoadKeyFile(path)
			if !errors.Is(err, secret.ErrKeyFile) {
				t.Fatalf("LoadKeyFile = %v, %v; want an error wrapping ErrKeyFile", r, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			t.Log(err)
			checkClean(t, err, [][]byte{key1, key2})
			for _, l := range []string{k1[:12], k2[:12], short, long[:12], "1234567890123"} {
				if strings.Contains(err.Error(), l) {
					t.Fatalf("error %q contains key material %q", err, l)
				}
			}
			if _, _, err := secret.KeyFile(path).Current(ctx); !errors.Is(err, secret.ErrKeyFile) {
				t.Errorf("KeyFile.Current: %v", err)
			}
			if _, err := secret.AddKey(path); !errors.Is(err, secret.ErrKeyFile) {
				t.Errorf("AddKey: %v", err)
			}
		})
	}
}

func TestKeyFileMissing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "none.key")
	for _, err := range []error{
		func() error { _, err := secret.LoadKeyFile(path); return err }(),
		func() error { _, _, err := secret.KeyFile(path).Current(ctx); return err }(),
		func() error { _, err := secret.KeyFile(path).Key(ctx, "k1"); return err }(),
		func() error { _, err := secret.AddKey(path); return err }(),
	} {
		if !errors.Is(err, secret.ErrKeyFile) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("missing key file: %v, want ErrKeyFile and fs.ErrNotExist", err)
		}
	}
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := secret.LoadKeyFile(path); !errors.Is(err, secret.ErrKeyFile) {
		t.Errorf("a directory as key file: %v", err)
	}
}

func TestKeyFileCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "strata.key")
	id1, err := secret.GenerateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	kr := secret.KeyFile(path)

	// A failed first read is not cached.
	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := kr.Current(ctx); !errors.Is(err, secret.ErrKeyFile) {
			t.Fatalf("Current of a 0644 file: %v", err)
		}
		if err := os.Chmod(path, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := mustSeal(t, kr, testPath, testPlain)

	// A key added to the file is seen by the running keyring: Key of an id
	// it lacks, and Current, read the changed file again.
	id2, err := secret.AddKey(path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := secret.Seal(ctx, mustLoad(t, path), testPrefix, testPath, testPlain)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := secret.Open(ctx, kr, testPrefix, testPath, other); err != nil || got != testPlain {
		t.Fatalf("Open of a value sealed with the added key %s: %q, %v", id2, got, err)
	}
	if id, _, err := kr.Current(ctx); err != nil || id != id2 {
		t.Fatalf("Current after AddKey = %q, %v; want %s", id, err, id2)
	}

	// Cached: the keys stay while the file is gone.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{old, other} {
		if got, err := secret.Open(ctx, kr, testPrefix, testPath, v); err != nil || got != testPlain {
			t.Fatalf("Open after the file was removed: %q, %v", got, err)
		}
	}
	if id, _, err := kr.Current(ctx); err != nil || id != id2 {
		t.Fatalf("Current after the file was removed = %q, %v", id, err)
	}
	if _, err := kr.Key(ctx, "k-none"); !errors.Is(err, secret.ErrUnknownKey) {
		t.Fatalf("Key(k-none): %v", err)
	}
	_ = id1

	// A canceled context is honored.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := kr.Current(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Current(canceled): %v", err)
	}
}

func TestKeyFileChangedAndBroken(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits on Windows")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "strata.key")
	if _, err := secret.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	kr := secret.KeyFile(path)
	if _, _, err := kr.Current(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	// The file changed (its mode) and is refused now: Current says so, and
	// Key of an unknown id says both.
	if _, _, err := kr.Current(ctx); !errors.Is(err, secret.ErrKeyFile) {
		t.Errorf("Current of a file made 0644: %v", err)
	}
	_, err := kr.Key(ctx, "k-none")
	if !errors.Is(err, secret.ErrUnknownKey) || !errors.Is(err, secret.ErrKeyFile) {
		t.Errorf("Key of an unknown id, file made 0644: %v", err)
	}
}

func mustLoad(t *testing.T, path string) *secret.Ring {
	t.Helper()
	r, err := secret.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestKeyFileConcurrent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "strata.key")
	if _, err := secret.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	kr := secret.KeyFile(path)
	done := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				v, err := secret.Seal(ctx, kr, testPrefix, testPath, testPlain)
				if err == nil {
					_, err = secret.Open(ctx, kr, testPrefix, testPath, v)
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	if _, err := secret.AddKey(path); err != nil {
		t.Fatal(err)
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
