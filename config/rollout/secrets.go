package rollout

import (
	"path"
	"slices"
	"strings"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/schema"
)

// Masked returns a copy of r whose changes show config.Mask instead of the
// values at secret paths (config paths, as Schema.SecretPaths lists them):
// the value of a leaf key at or above a secret path, or of a document key
// with a secret inside. Use it before showing a rollout; r itself keeps
// the raw values, which canaries and the promotion apply.
func Masked(r *Rollout, secrets []string) *Rollout {
	if r == nil {
		return nil
	}
	cp := *r
	cp.Steps = slices.Clone(r.Steps)
	cp.Changes = slices.Clone(r.Changes)
	for i, ch := range cp.Changes {
		if !ch.Deleted && ch.Value != "" && secretKey(secrets, ch.Key) {
			cp.Changes[i].Value = config.Mask
		}
	}
	return &cp
}

// secretKey reports whether data key key (relative to P/data/) holds a
// secret value, by the rule the writer masks its releases with.
func secretKey(secrets []string, key string) bool {
	if len(secrets) == 0 {
		return false
	}
	ext := path.Ext(key)
	p := strings.ReplaceAll(strings.TrimSuffix(key, ext), "/", ".")
	if schema.HoldsSecret(secrets, p) {
		return true
	}
	if ext != "" { // a document: secret when a secret lies inside it
		for _, s := range secrets {
			if p == "" || strings.HasPrefix(s, p+".") {
				return true
			}
		}
	}
	return false
}

// maskedBySchema is Masked with the secret paths of a published schema
// document (none without one); when the document does not compile, every
// value is masked.
func maskedBySchema(r *Rollout, doc []byte) *Rollout {
	if doc == nil {
		return Masked(r, nil)
	}
	sch, err := schema.Compile(doc)
	if err != nil {
		cp := Masked(r, nil)
		for i := range cp.Changes {
			if !cp.Changes[i].Deleted && cp.Changes[i].Value != "" {
				cp.Changes[i].Value = config.Mask
			}
		}
		return cp
	}
	return Masked(r, sch.SecretPaths())
}
