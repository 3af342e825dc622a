package main

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/secret"
)

const secretsLong = `Values of the paths the schema marks secret ("x-secret" or "writeOnly") are
sealed when written with --key-file (or STRATA_KEY_FILE): AES-256-GCM under
the key file's current key, bound to the prefix and the path, stored as

  strata:enc:v1:<key-id>:<base64url of nonce and ciphertext>

in the data key and in the release record (set, push, edit, delete,
rollback, rollout start, secrets rotate), so that etcd, its backups and
anyone who can read P/meta/ see only envelopes. Applications open them with
config.WithKeyring(config.KeyFile(path)); get --show-secrets prints them.
Without --key-file, writes store new secret values as given (plain text)
and keep sealed ones as they are.

A key file is JSON holding named 256-bit keys, one of them current; it must
not be readable by group or others (chmod 600; in Kubernetes mount it with
defaultMode 0400). Key material never appears in output or errors.

Rotating the key:

  strata secrets keygen --add keys.json          # a new current key
  (deploy the new key file to the applications)
  strata --key-file keys.json secrets rotate     # re-seal the data under it

Release records keep the ciphertexts they were written with: remove an old
key from the file only when no release you may roll back to uses it (rotate
reports how many values still do); a rollback to a release sealed with a
removed key is refused, naming the key id.`

func (a *app) secretsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Make key files and re-seal secret values under a new key",
		Long:  secretsLong,
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.secretsKeygenCommand(), a.secretsRotateCommand())
	for _, c := range cmd.Commands() {
		c.SilenceErrors, c.SilenceUsage = true, true
	}
	return cmd
}

func (a *app) secretsKeygenCommand() *cobra.Command {
	var add bool
	cmd := &cobra.Command{
		Use:   "keygen [--add] FILE",
		Short: "Create a key file, or add a new current key to one; print the key id",
		Long: `Create the key file FILE (mode 0600) holding one new random 256-bit key, the
current one, and print its id. An existing FILE is never overwritten (exit 1).

With --add, add a new random key to the key file FILE and make it current,
keeping the others, so that every value sealed before still opens; the file
is replaced atomically. A key file readable by group or others is refused.

Only the new key's id is printed (like k20261201-3fa9c2), never a key. etcd
is not contacted.`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			gen := secret.GenerateKeyFile
			if add {
				gen = secret.AddKey
			}
			id, err := gen(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, id)
			return nil
		},
	}
	cmd.Flags().BoolVar(&add, "add", false, "add a new current key to an existing key file")
	return cmd
}

func (a *app) secretsRotateCommand() *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Re-seal every secret value under the key file's current key, in one release",
		Long: `Seal every secret value of the data keys again under the current key of
--key-file (or STRATA_KEY_FILE), in one release (a compare-and-swap write
like any other: with --expect-version, a conflict exits 3). Values already
sealed with the current key are left alone; plain secret values get sealed.
The values do not change: applications apply the release as no change.

Then it reports which keys the stored values use, for example

  3 values in data keys use key k20261201-3fa9c2; 5 values in release records still use old keys: k20260601-9b01d4 (5)

Release records keep their ciphertexts: an old key is needed as long as a
release you may roll back to uses it. It fails, writing nothing, when a
stored value does not open with the key file (a key is missing, or the value
was changed). --dry-run shows what would be re-sealed and the keys in use now.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.g.keyFile == "" {
				return usagef("secrets rotate needs --key-file FILE (or STRATA_KEY_FILE): the key file whose current key seals the values")
			}
			var use *config.KeyUse
			err := a.write(cmd.Context(), &wf, func(ctx context.Context, w *config.RawWriter) (*config.Release, error) {
				rel, err := w.Rotate(ctx, wf.options()...)
				if err != nil {
					return nil, err
				}
				use, err = w.KeyUse(ctx)
				return rel, err
			})
			if err != nil {
				return err
			}
			current, _, err := a.ring.Current(cmd.Context())
			if err != nil {
				return fmt.Errorf("--key-file: %w", err)
			}
			line := keyUseLine(use, current)
			if wf.dryRun {
				line = "now: " + line
			}
			fmt.Fprintln(a.stdout, line)
			return nil
		},
	}
	wf.add(cmd, true)
	return cmd
}

// keyUseLine says which keys the sealed values use: "3 values in data keys
// use key k2; 5 values in release records still use old keys: k1 (5)".
func keyUseLine(u *config.KeyUse, current string) string {
	var b strings.Builder
	data, oldData := u.Data[current], others(u.Data, current)
	switch {
	case data == 0 && len(oldData) == 0:
		b.WriteString("no value in data keys is sealed")
	case len(oldData) == 0:
		fmt.Fprintf(&b, "%s in data keys %s key %s", values(data), verb(data, "uses", "use"), current)
	case data == 0:
		n := total(oldData)
		fmt.Fprintf(&b, "%s in data keys still %s old keys: %s", values(n), verb(n, "uses", "use"), keyCounts(oldData))
	default:
		n := total(oldData)
		fmt.Fprintf(&b, "%s in data keys: %d %s key %s, %d still %s old keys: %s",
			values(data+n), data, verb(data, "uses", "use"), current, n, verb(n, "uses", "use"), keyCounts(oldData))
	}
	b.WriteString("; ")
	if old := others(u.Releases, current); len(old) > 0 {
		n := total(old)
		fmt.Fprintf(&b, "%s in release records still %s old keys: %s", values(n), verb(n, "uses", "use"), keyCounts(old))
	} else {
		b.WriteString("no value in release records uses an old key")
	}
	return b.String()
}

// others returns the counts of m without the key id current.
func others(m map[string]int, current string) map[string]int {
	out := map[string]int{}
	for id, n := range m {
		if id != current && n > 0 {
			out[id] = n
		}
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// keyCounts renders counts by key id, most used first: "k1 (3), k0 (1)".
func keyCounts(m map[string]int) string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if m[ids[i]] != m[ids[j]] {
			return m[ids[i]] > m[ids[j]]
		}
		return ids[i] < ids[j]
	})
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s (%d)", showText(id), m[id])
	}
	return strings.Join(parts, ", ")
}

func values(n int) string { return plural(n, "value") }

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
