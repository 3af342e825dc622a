// Package secret seals the values of secret configuration paths, so that
// etcd, its backups and the release records under P/meta/ hold only
// ciphertexts, and any identity without the key sees nothing but envelopes.
//
// # Envelope
//
// A sealed value is one string:
//
//	strata:enc:v1:<key-id>:<payload>
//
// payload is the unpadded base64url encoding (RFC 4648 §5) of a fresh random
// 12-byte nonce followed by the AES-256-GCM ciphertext and its 16-byte tag.
// The associated data is
//
//	"strata:v1\x00" + prefix + "\x00" + path
//
// where prefix is the etcd prefix the value is stored under, exactly as the
// caller gives it (it must not contain a NUL byte), and path the dotted
// config path of the value (db.password, users.0.password): a value copied
// to another path or another prefix does not open.
//
// Seal writes with the keyring's current key; Open reads with any key of the
// ring, named by the envelope's key id. Open's errors name the path and the
// key id, never the value or any key material, and say why:
//
//   - ErrMalformed: the value does not have the envelope's shape (it lacks
//     the prefix, the key id or the payload, or the payload has a character
//     outside the unpadded base64url alphabet);
//   - ErrUnknownKey: the ring has no key with the envelope's key id;
//   - ErrTampered: the envelope has the right shape but does not
//     authenticate: it belongs to another path or prefix, a byte was
//     changed, it was truncated, or its base64 is not the canonical one.
//
// # Keys
//
// A Keyring holds named 256-bit keys, one of them current; a KMS can
// implement it. Ring is an in-memory keyring; KeyFile reads one from a key
// file. A key id is non-empty, valid UTF-8, and contains no ':', white space
// or control characters; GenerateKeyFile and AddKey make ids of the form
// "k" + the UTC date (yyyymmdd) + "-" + 6 random hex digits, e.g.
// k20261201-3fa9c2.
//
// A key file is JSON:
//
//	{
//	  "current": "k20261201-3fa9c2",
//	  "keys": [
//	    {"id": "k20260601-9b01d4", "key": "<standard base64 of 32 bytes>", "created": "2026-06-01T09:30:00Z"},
//	    {"id": "k20261201-3fa9c2", "key": "<standard base64 of 32 bytes>", "created": "2026-12-01T14:05:12Z"}
//	  ]
//	}
//
// Outside Windows, a key file whose mode lets its group or others read,
// write or execute it (mode&0o077 != 0) is refused: chmod 600 it. In
// Kubernetes, mount the Secret that holds it with defaultMode 0400. Errors
// about a key file wrap ErrKeyFile and never contain key material.
//
// # Rotation
//
// AddKey adds a new current key to a key file and keeps the others, so every
// value sealed before still opens. Re-seal the values under the new key (strata
// secrets rotate), and remove an old key from the file only when nothing
// needs it any more: release records keep their ciphertexts, and a release
// sealed with a removed key can no longer be read or rolled back to.
package secret
