package secret

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"
)

// maxKeyFileSize bounds what LoadKeyFile reads: thousands of keys.
const maxKeyFileSize = 1 << 20

// keyFileJSON is the key file's format (see the package documentation).
type keyFileJSON struct {
	Current string        `json:"current"`
	Keys    []keyFileItem `json:"keys"`
}

// keyFileItem is one key of a key file.
type keyFileItem struct {
	ID      string `json:"id"`
	Key     string `json:"key"`     // standard base64 of 32 bytes
	Created string `json:"created"` // RFC 3339; may be empty when read
}

// KeyFile returns a keyring read from the key file at path on first use,
// and cached. The file is read again when it has changed (its size,
// modification time or identity) by the time Current is called, or Key is
// asked for an id the cached keys lack, so that a running program sees a key
// added by AddKey; while the file cannot be found, the cached keys are used.
// Its errors (the file's mode lets group or others read it, it is not valid
// JSON, it holds a bad key) wrap ErrKeyFile and never contain key material;
// a failed read is not cached.
func KeyFile(path string) Keyring {
	return &keyFile{path: path}
}

// keyFile is the Keyring of KeyFile.
type keyFile struct {
	path string

	mu   sync.Mutex
	ring *Ring       // nil until read
	info fs.FileInfo // of the file ring was read from
}

// Current returns the current key of the file, reading it again if it has
// changed.
func (k *keyFile) Current(ctx context.Context) (string, []byte, error) {
	r, err := k.get(ctx, "")
	if err != nil {
		return "", nil, err
	}
	return r.Current(ctx)
}

// Key returns the key with id, reading the file again if it has changed and
// the cached keys lack id.
func (k *keyFile) Key(ctx context.Context, id string) ([]byte, error) {
	r, err := k.get(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.Key(ctx, id)
}

// get returns the ring, read on first use and again when the file has
// changed and either the current key is wanted (id empty) or id is missing.
func (k *keyFile) get(ctx context.Context, id string) (*Ring, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.ring != nil && (id != "" && k.ring.has(id) || !k.changed()) {
		return k.ring, nil
	}
	r, info, err := loadKeyFile(k.path)
	if err != nil {
		if k.ring != nil && id != "" {
			return nil, fmt.Errorf("%w (the key file has changed, and reading it again failed: %w)", ErrUnknownKey, err)
		}
		return nil, err
	}
	k.ring, k.info = r, info
	return r, nil
}

// changed reports whether the file at k.path is not the one k.ring was read
// from. A file that cannot be found has not changed: the cache stays.
func (k *keyFile) changed() bool {
	fi, err := os.Stat(k.path)
	if err != nil {
		return false
	}
	return !os.SameFile(fi, k.info) || fi.Size() != k.info.Size() ||
		!fi.ModTime().Equal(k.info.ModTime()) || fi.Mode() != k.info.Mode()
}

// String names the file, never a key.
func (k *keyFile) String() string { return fmt.Sprintf("secret.KeyFile(%s)", k.path) }

// GoString is String.
func (k *keyFile) GoString() string { return k.String() }

// LoadKeyFile reads the key file at path into a Ring. Its errors (the file
// is missing, its mode lets group or others read it, it is not valid JSON,
// it holds a bad key) wrap ErrKeyFile and never contain key material.
func LoadKeyFile(path string) (*Ring, error) {
	r, _, err := loadKeyFile(path)
	return r, err
}

// loadKeyFile is LoadKeyFile, also returning the file's information.
func loadKeyFile(path string) (*Ring, fs.FileInfo, error) {
	kf, info, err := readKeyFile(path)
	if err != nil {
		return nil, nil, err
	}
	keys := make(map[string][]byte, len(kf.Keys))
	for _, item := range kf.Keys {
		keys[item.ID], _ = base64.StdEncoding.DecodeString(item.Key) // checked by readKeyFile
	}
	r, err := NewRing(kf.Current, keys)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	return r, info, nil
}

// readKeyFile reads and checks the key file at path.
func readKeyFile(path string) (*keyFileJSON, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFile, path)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, nil, fmt.Errorf("%w: key file %s is readable by group or others (mode %04o): chmod 600 %s", ErrKeyFile, path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read %s: %w", ErrKeyFile, path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrKeyFile, path, maxKeyFileSize)
	}
	var kf keyFileJSON
	if err := json.Unmarshal(data, &kf); err != nil {
		// encoding/json's messages can quote a character of the file,
		// which may be one of a key's: say only where the problem is.
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return nil, nil, fmt.Errorf("%w: %s is not valid JSON (at byte %d)", ErrKeyFile, path, syn.Offset)
		case errors.As(err, &typ):
			kind, _, _ := strings.Cut(typ.Value, " ") // "number 5": keep "number"
			return nil, nil, fmt.Errorf("%w: %s: %s is a JSON %s, want %s", ErrKeyFile, path, jsonField(typ.Field), kind, jsonKind(typ.Type))
		default:
			return nil, nil, fmt.Errorf("%w: %s is not a JSON key file", ErrKeyFile, path)
		}
	}
	if err := kf.check(); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %w", ErrKeyFile, path, err)
	}
	return &kf, info, nil
}

// jsonField names a field of an UnmarshalTypeError.
func jsonField(f string) string {
	if f == "" {
		return "the file"
	}
	return f
}

// jsonKind names the JSON kind a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.String:
		return "string"
	}
	return t.String()
}

// check says what is wrong with a key file, never quoting a key.
func (kf *keyFileJSON) check() error {
	if len(kf.Keys) == 0 {
		return errors.New("no keys")
	}
	seen := make(map[string]bool, len(kf.Keys))
	for i, item := range kf.Keys {
		if err := checkID(item.ID); err != nil {
			return fmt.Errorf("keys[%d]: id %q: %w", i, item.ID, err)
		}
		if seen[item.ID] {
			return fmt.Errorf("keys[%d]: id %s appears twice", i, item.ID)
		}
		seen[item.ID] = true
		key, err := base64.StdEncoding.DecodeString(item.Key)
		if err != nil {
			return fmt.Errorf("key %s is not standard base64", item.ID)
		}
		if len(key) != keySize {
			return fmt.Errorf("key %s is %d bytes, want %d", item.ID, len(key), keySize)
		}
		if item.Created != "" {
			if _, err := time.Parse(time.RFC3339, item.Created); err != nil {
				return fmt.Errorf("key %s: created is not an RFC 3339 time", item.ID)
			}
		}
	}
	switch {
	case kf.Current == "":
		return errors.New("no current key")
	case !seen[kf.Current]:
		return fmt.Errorf("the current key %q is not among its keys", kf.Current)
	}
	return nil
}

// has reports whether the file has a key with id.
func (kf *keyFileJSON) has(id string) bool {
	for _, item := range kf.Keys {
		if item.ID == id {
			return true
		}
	}
	return false
}

// addKey adds a new random key, made current, and returns its id.
func (kf *keyFileJSON) addKey(now time.Time) (string, error) {
	key := make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	id, err := newKeyID(now, kf.has)
	if err != nil {
		return "", err
	}
	kf.Keys = append(kf.Keys, keyFileItem{
		ID:      id,
		Key:     base64.StdEncoding.EncodeToString(key),
		Created: now.UTC().Format(time.RFC3339),
	})
	kf.Current = id
	return id, nil
}

// marshal encodes the key file, one key a line.
func (kf *keyFileJSON) marshal() ([]byte, error) {
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode key file: %w", err)
	}
	return append(data, '\n'), nil
}

// newKeyID returns "k" + the UTC date of now + "-" + 6 random hex digits,
// an id taken reports false for.
func newKeyID(now time.Time, taken func(string) bool) (string, error) {
	for range 100 {
		var b [3]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("random key id: %w", err)
		}
		id := "k" + now.UTC().Format("20060102") + "-" + hex.EncodeToString(b[:])
		if !taken(id) {
			return id, nil
		}
	}
	return "", errors.New("no free key id for today")
}

// GenerateKeyFile creates a key file at path (O_EXCL, mode 0600: it never
// overwrites a file) holding one new random key, the current one, and
// returns the key's id.
func GenerateKeyFile(path string) (id string, err error) {
	var kf keyFileJSON
	id, err = kf.addKey(time.Now())
	if err != nil {
		return "", fmt.Errorf("secret: generate key file: %w", err)
	}
	data, err := kf.marshal()
	if err != nil {
		return "", fmt.Errorf("secret: generate key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("secret: key file %s already exists, and is never overwritten (AddKey, strata secrets keygen --add, adds a key to it): %w", path, err)
	}
	if err != nil {
		return "", fmt.Errorf("secret: generate key file: %w", err)
	}
	if err := writeSync(f, data); err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("secret: generate key file: %w", err)
	}
	syncDir(filepath.Dir(path))
	return id, nil
}

// AddKey adds a new random key to the key file at path and makes it
// current, keeping the others, and returns its id. The file is replaced
// atomically (a temporary file, mode 0600, in the same directory, renamed
// over it; a symbolic link is followed to the file it names). It refuses a
// key file LoadKeyFile refuses, with an error wrapping ErrKeyFile. Two
// AddKeys on the same file at once may lose one of the keys.
func AddKey(path string) (id string, err error) {
	file, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	kf, _, err := readKeyFile(file)
	if err != nil {
		return "", err
	}
	id, err = kf.addKey(time.Now())
	if err != nil {
		return "", fmt.Errorf("secret: add key to %s: %w", path, err)
	}
	data, err := kf.marshal()
	if err != nil {
		return "", fmt.Errorf("secret: add key to %s: %w", path, err)
	}
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("secret: add key to %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if runtime.GOOS != "windows" {
		if err := tmp.Chmod(0o600); err != nil {
			_ = tmp.Close()
			return "", fmt.Errorf("secret: add key to %s: %w", path, err)
		}
	}
	if err := writeSync(tmp, data); err != nil {
		return "", fmt.Errorf("secret: add key to %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return "", fmt.Errorf("secret: add key to %s: %w", path, err)
	}
	syncDir(dir)
	return id, nil
}

// writeSync writes data to f, syncs and closes it.
func writeSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a new directory entry durable where the system allows it;
// the file itself is already synced, so a failure here is not reported.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
