package config

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config/secret"
	"github.com/strataconf/strata/providers"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// This file is where secret values are sealed and opened (package secret).
// Writers given a keyring (WithWriterKeyring) seal the value of every
// secret leaf key they write and open what they read; a Config given one
// (WithKeyring) opens the sealed values of its etcd layer before they are
// merged. A sealed value is bound to the prefix and to the config path of
// its leaf key ("db/password" → "db.password"), so it opens nowhere else.

// KeyFile returns the keyring of a key file (secret.KeyFile): read on first
// use, refused when group or others can read it. `strata secrets keygen`
// creates one.
func KeyFile(path string) secret.Keyring { return secret.KeyFile(path) }

// WithKeyring makes the Config open the sealed values of its etcd layer
// with ring. A value that does not open (tampered, moved to another path
// or prefix, sealed with a key the ring does not hold) makes the candidate
// rejected: the last good configuration stays, and the error names the key
// and the key id, never the value. Without a keyring a sealed value is
// rejected the same way.
func WithKeyring(ring secret.Keyring) Option {
	return func(o *options) { o.keyring = ring }
}

// WithRequireEncryption rejects a candidate whose etcd layer holds plain
// text at a secret path (a `secret:"true"` field, or beneath one): every
// such value must be sealed. Files and the environment are not checked.
func WithRequireEncryption() Option {
	return func(o *options) { o.requireSealed = true }
}

// leafPath returns the config path a leaf key is sealed under ("db/port" →
// "db.port"), and false for a document key.
func leafPath(rel string) (string, bool) {
	if path.Ext(rel) != "" {
		return "", false
	}
	return strings.ReplaceAll(rel, "/", "."), true
}

// open returns c with every sealed leaf value opened, and the keys whose
// value could not be (they keep their sealed text). Without a keyring
// nothing is opened.
func (w *RawWriter) open(ctx context.Context, c Content) (Content, map[string]error) {
	ring := w.opts.keyring
	if ring == nil {
		return c, nil
	}
	var out Content
	var failed map[string]error
	for k, v := range c {
		p, leaf := leafPath(k)
		if !leaf || !secret.IsSealed(v) {
			continue
		}
		if out == nil {
			out = make(Content, len(c))
			for k2, v2 := range c {
				out[k2] = v2
			}
		}
		plain, err := secret.Open(ctx, ring, w.layout.Prefix(), p, v)
		if err != nil {
			if failed == nil {
				failed = map[string]error{}
			}
			failed[k] = err
			continue
		}
		out[k] = plain
	}
	if out == nil {
		return c, nil
	}
	return out, failed
}

// openGiven opens the sealed values a write was given (a rollout's
// candidate, a document holding sealed text), so that it is validated on
// plain values and sealed again when stored. A sealed value that does not
// open is refused, unless it is the stored value, left as it was.
func (w *RawWriter) openGiven(ctx context.Context, st *state, c Content) (Content, error) {
	if w.opts.keyring == nil {
		return c, nil
	}
	out, unopened := w.open(ctx, c)
	for k := range unopened {
		if c[k] == st.content[k] {
			delete(unopened, k)
		}
	}
	if err := unopenedError(unopened); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return out, nil
}

// Seal returns value as the writer stores it at data key key (relative to
// P/data/): sealed when the key holds a secret path (the published schema's,
// WithSecretPaths, or Writer[T]'s tags) and the writer has a keyring
// (WithWriterKeyring), else value itself.
func (w *RawWriter) Seal(ctx context.Context, key, value string) (string, error) {
	p, leaf := leafPath(key)
	if w.opts.keyring == nil || !leaf || secret.IsSealed(value) {
		return value, nil
	}
	st := &state{}
	if w.opts.schema == nil {
		doc, err := w.Schema(ctx)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return "", err
		}
		st.schema = doc
	}
	if !keyIsSecret(w.secretsOf(st), key) {
		return value, nil
	}
	return secret.Seal(ctx, w.opts.keyring, w.layout.Prefix(), p, value)
}

// unopenedError describes the keys that could not be opened, or is nil.
func unopenedError(unopened map[string]error) error {
	if len(unopened) == 0 {
		return nil
	}
	keys := make([]string, 0, len(unopened))
	for k := range unopened {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	errs := make([]error, len(keys))
	for i, k := range keys {
		errs[i] = unopened[k]
	}
	return errors.Join(errs...)
}

// sealContent returns c as it is to be stored: with a keyring, the value
// of every secret leaf key sealed, except values that did not change,
// which keep their stored form (unless reseal asks for everything under
// the current key).
func (w *RawWriter) sealContent(ctx context.Context, st *state, c Content, reseal bool) (Content, error) {
	ring := w.opts.keyring
	if ring == nil {
		if reseal {
			return nil, errors.New("config: re-sealing needs a keyring (WithWriterKeyring)")
		}
		return c, nil
	}
	current := ""
	if reseal {
		if len(st.unopened) > 0 {
			return nil, fmt.Errorf("config: cannot re-seal values that do not open: %w", unopenedError(st.unopened))
		}
		id, _, err := ring.Current(ctx)
		if err != nil {
			return nil, fmt.Errorf("config: keyring: %w", err)
		}
		current = id
	}
	secrets := w.secretsOf(st)
	out := make(Content, len(c))
	for k, v := range c {
		out[k] = v
		p, leaf := leafPath(k)
		if !leaf || !keyIsSecret(secrets, k) {
			continue
		}
		stored, had := st.content[k]
		if had && st.plain[k] == v {
			id, sealed := secret.KeyID(stored)
			if !reseal || (sealed && id == current) {
				out[k] = stored
				continue
			}
		}
		if _, failed := st.unopened[k]; failed && v == stored {
			continue // left as it was: it cannot be read, so it is not re-sealed
		}
		sealed, err := secret.Seal(ctx, ring, w.layout.Prefix(), p, v)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		out[k] = sealed
	}
	return out, nil
}

// Rotate seals every secret value again under the keyring's current key, in
// one release; values already sealed with it are left alone. Release
// records keep the ciphertexts they hold: they open while their key stays
// in the ring. It fails, writing nothing, when a stored value does not
// open.
func (w *RawWriter) Rotate(ctx context.Context, opts ...WriteOption) (*Release, error) {
	opts = append([]WriteOption{Message("rotate secrets to the current key"), func(o *writeOptions) { o.reseal = true }}, opts...)
	return w.write(ctx, func(st *state) (Content, error) { return st.plain, nil }, 0, opts)
}

// KeyUse counts the sealed values under the prefix by key id: in the data
// keys, and in the retained release records and checkpoints (each old and
// new value of a record counts).
type KeyUse struct {
	Data     map[string]int `json:"data"`
	Releases map[string]int `json:"releases"`
}

// sealedIDs finds the key ids of sealed values in any text.
var sealedIDs = regexp.MustCompile(regexp.QuoteMeta(secret.Prefix) + `([^:"\s]+):`)

// KeyUse reports which keys the stored secret values are sealed with.
func (w *RawWriter) KeyUse(ctx context.Context) (*KeyUse, error) {
	ctx, cancel := context.WithTimeout(ctx, w.opts.timeout)
	defer cancel()
	resp, err := w.cli.Txn(ctx).Then(
		clientv3.OpGet(w.layout.Data(), clientv3.WithPrefix()),
		clientv3.OpGet(w.layout.Releases(), clientv3.WithPrefix()),
		clientv3.OpGet(w.layout.Checkpoints(), clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return nil, w.wrap("read "+w.layout.Prefix(), err)
	}
	u := &KeyUse{Data: map[string]int{}, Releases: map[string]int{}}
	for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
		if id, ok := secret.KeyID(string(kv.Value)); ok {
			u.Data[id]++
		}
	}
	for _, r := range resp.Responses[1:] {
		for _, kv := range r.GetResponseRange().Kvs {
			for _, m := range sealedIDs.FindAllSubmatch(kv.Value, -1) {
				u.Releases[string(m[1])]++
			}
		}
	}
	return u, nil
}

// openContent opens the sealed values of an etcd layer's content in place
// (its tree is the content's own) and, with WithRequireEncryption, refuses
// plain text at a secret path. Errors name the path and the key, never the
// value. lv, when not nil, stands for ct's Keys (see layer.leaves).
func (c *Config[T]) openContent(ctx context.Context, ct *providers.Content, lv *etcdprov.Leaves) error {
	paths := sealedPaths(ct.Tree)
	if len(paths) == 0 && !c.opts.requireSealed {
		return nil // nothing sealed, nothing required: one walk, no allocation per leaf
	}
	keys := ct.Keys
	if keys == nil && lv != nil {
		keys = lv.Map()
	}
	if !c.opts.requireSealed {
		sealed := make(map[string]string, len(paths))
		for _, p := range paths {
			sealed[p] = keys[p]
		}
		keys = sealed
	}
	var errs []error
	for p, key := range keys {
		v, _, _ := lookup(ct.Tree, p)
		plain, opened, err := c.openLeaf(ctx, p, key, v)
		switch {
		case err != nil:
			errs = append(errs, err)
		case opened:
			setLeaf(ct.Tree, p, plain)
		}
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// sealedPaths lists the paths of tree whose value is a sealed string.
func sealedPaths(tree map[string]any) []string {
	var out []string
	var segs []string
	var walk func(m map[string]any)
	walk = func(m map[string]any) {
		for k, v := range m {
			switch v := v.(type) {
			case map[string]any:
				segs = append(segs, k)
				walk(v)
				segs = segs[:len(segs)-1]
			case string:
				if secret.IsSealed(v) {
					out = append(out, strings.Join(append(segs[:len(segs):len(segs)], k), "."))
				}
			}
		}
	}
	walk(tree)
	return out
}

// openChange opens the value of one changed leaf (a Change of the etcd
// layer), as openContent does.
func (c *Config[T]) openChange(ctx context.Context, ch *providers.Change) error {
	if ch.Removed {
		return nil
	}
	plain, opened, err := c.openLeaf(ctx, ch.Path, ch.Key, ch.Value)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if opened {
		ch.Value = plain
	}
	return nil
}

// openLeaf opens value v of the leaf at config path p, held by etcd key
// key, when it is sealed (opened), and refuses plain text at a secret path
// under WithRequireEncryption. Values of document keys are never sealed.
func (c *Config[T]) openLeaf(ctx context.Context, p, key string, v any) (plain string, opened bool, err error) {
	l := c.etcd.Layout()
	rel, ok := l.RelKey(key)
	if !ok {
		return "", false, nil
	}
	leafP, leaf := leafPath(rel)
	s, isString := v.(string)
	switch {
	case isString && leaf && secret.IsSealed(s):
		if c.opts.keyring == nil {
			return "", false, fmt.Errorf("%s (etcd key %s) is sealed, and the Config has no keyring (WithKeyring)", p, key)
		}
		plain, err := secret.Open(ctx, c.opts.keyring, l.Prefix(), leafP, s)
		if err != nil {
			return "", false, fmt.Errorf("%s (etcd key %s): %w", p, key, err)
		}
		return plain, true, nil
	case c.opts.requireSealed && schema.HoldsSecret(c.b.secrets, p):
		return "", false, fmt.Errorf("%s (etcd key %s): plain text at a secret path (WithRequireEncryption)", p, key)
	}
	return "", false, nil
}

// loopCtx is the context of work the reload loop does: it ends with Close.
// Before the loop starts (Load) there is none to end.
func (c *Config[T]) loopCtx() context.Context {
	if c.ctx == nil {
		return context.Background()
	}
	return c.ctx
}
