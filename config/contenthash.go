package config

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"sort"
	"strings"
)

// Content hashes come in two formats, told apart by their prefix:
//
//   - "sha256t:" (written since records of format 2 gained it): the keys
//     fall into 256 buckets by the FNV-1a hash of the key; each bucket's
//     digest is the SHA-256 of its sorted key/value pairs, and the content
//     hash is the SHA-256 of the index byte and digest of every bucket that
//     holds keys, in index order. A change of k keys costs k buckets to
//     hash again, not the whole content.
//   - "sha256:" (older records): the SHA-256 of all sorted key/value pairs.
//
// Both are functions of the content alone; hashMatches compares content
// with a hash of either format.
const (
	treeHashPrefix = "sha256t:"
	flatHashPrefix = "sha256:"
	hashBuckets    = 256
)

// bucketOf returns the bucket of key k in a tree hash.
func bucketOf(k string) int {
	h := fnv.New32a()
	h.Write([]byte(k))
	return int(h.Sum32() % hashBuckets)
}

// pairsDigest returns the SHA-256 of the pairs of keys (sorted) in c; the
// zero digest, which no bucket that holds keys has, for no keys.
func pairsDigest(keys []string, c Content) [sha256.Size]byte {
	if len(keys) == 0 {
		return [sha256.Size]byte{}
	}
	n := 0
	for _, k := range keys {
		n += len(k) + len(c[k]) + 2
	}
	buf := make([]byte, 0, n)
	for _, k := range keys {
		buf = append(buf, k...)
		buf = append(buf, 0)
		buf = append(buf, c[k]...)
		buf = append(buf, 0)
	}
	return sha256.Sum256(buf)
}

// flatHash returns the hash of c in the "sha256:" format.
func flatHash(c Content) string {
	d := pairsDigest(sortedKeys(c), c)
	return flatHashPrefix + hex.EncodeToString(d[:])
}

// hashMatches reports whether h, in either format, is the hash of c.
func hashMatches(c Content, h string) bool {
	if strings.HasPrefix(h, treeHashPrefix) {
		return c.Hash() == h
	}
	return flatHash(c) == h
}

// hashLike returns the hash of c in the format of h (the tree format when
// h is empty).
func hashLike(c Content, h string) string {
	if strings.HasPrefix(h, flatHashPrefix) {
		return flatHash(c)
	}
	return c.Hash()
}

// contentHasher keeps the tree hash of a content current as keys change:
// the sorted keys and the digest of every bucket. It belongs to whoever
// holds the content it describes (writerCache, under its lock).
type contentHasher struct {
	keys    [hashBuckets][]string
	digests [hashBuckets * sha256.Size]byte // the digest of bucket b at b*sha256.Size
	root    string                          // the tree hash, once summed; "" after a change
}

// newContentHasher returns the hasher of c.
func newContentHasher(c Content) *contentHasher {
	h := &contentHasher{}
	for k := range c {
		b := bucketOf(k)
		h.keys[b] = append(h.keys[b], k)
	}
	for b := range h.keys {
		sort.Strings(h.keys[b])
		h.setDigest(b, pairsDigest(h.keys[b], c))
	}
	return h
}

// Hash returns the content hash recorded in releases, in the "sha256t:"
// format: see hashMatches for the formats a record may hold.
func (c Content) Hash() string {
	return newContentHasher(c).sum(nil)
}

// sum returns the tree hash, with the digests of the buckets in over
// taking the place of the hasher's own.
func (h *contentHasher) sum(over map[int][sha256.Size]byte) string {
	if len(over) == 0 && h.root != "" {
		return h.root
	}
	digests := h.digests
	for b, d := range over {
		copy(digests[b*sha256.Size:], d[:])
	}
	var buf [hashBuckets * (1 + sha256.Size)]byte
	n := 0
	for b := range hashBuckets {
		d := digests[b*sha256.Size : (b+1)*sha256.Size]
		if [sha256.Size]byte(d) == ([sha256.Size]byte{}) {
			continue // a bucket without keys
		}
		buf[n] = byte(b)
		n += 1 + copy(buf[n+1:], d)
	}
	d := sha256.Sum256(buf[:n])
	sum := treeHashPrefix + hex.EncodeToString(d[:])
	if len(over) == 0 {
		h.root = sum
	}
	return sum
}

// setDigest stores the digest of bucket b.
func (h *contentHasher) setDigest(b int, d [sha256.Size]byte) {
	copy(h.digests[b*sha256.Size:], d[:])
	h.root = ""
}

// with returns the tree hash of the content after changes, which c (the
// content the hasher describes) does not hold yet. Neither h nor c change.
func (h *contentHasher) with(c Content, changes []KeyChange) string {
	if len(changes) == 0 {
		return h.sum(nil)
	}
	touched := map[int][]KeyChange{}
	for _, ch := range changes {
		b := bucketOf(ch.Key)
		touched[b] = append(touched[b], ch)
	}
	over := make(map[int][sha256.Size]byte, len(touched))
	for b, chs := range touched {
		view := make(Content, len(h.keys[b])+len(chs))
		for _, k := range h.keys[b] {
			view[k] = c[k]
		}
		applyChanges(view, chs)
		over[b] = pairsDigest(sortedKeys(view), view)
	}
	return h.sum(over)
}

// set records that c[k] changed (c already holds the new value).
func (h *contentHasher) set(c Content, k string) {
	b := bucketOf(k)
	keys := h.keys[b]
	if i := sort.SearchStrings(keys, k); i == len(keys) || keys[i] != k {
		keys = append(keys, "")
		copy(keys[i+1:], keys[i:])
		keys[i] = k
		h.keys[b] = keys
	}
	h.setDigest(b, pairsDigest(h.keys[b], c))
}

// remove records that k was deleted from c.
func (h *contentHasher) remove(c Content, k string) {
	b := bucketOf(k)
	keys := h.keys[b]
	if i := sort.SearchStrings(keys, k); i < len(keys) && keys[i] == k {
		h.keys[b] = append(keys[:i], keys[i+1:]...)
	}
	h.setDigest(b, pairsDigest(h.keys[b], c))
}
