package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

func (a *app) setCommand() *cobra.Command {
	var wf writeFlags
	var replace bool
	cmd := &cobra.Command{
		Use:   "set PATH VALUE",
		Short: "Set the leaf at a dotted path (db.port) to a text value",
		Long: `Set the leaf key of a dotted path (db.port → P/data/db/port) to VALUE, as text
(numbers, booleans, durations as written; lists as JSON text: '["a","b"]'),
after checking the whole resulting configuration against the schema.

A leaf cannot stand where leaf keys lie beneath it (db over db/host) or above
it (db/port under a leaf db): one would hide the other, so set refuses, naming
them; --replace deletes them in the same release. ****** (how secrets are
shown) is never stored, as VALUE or inside a VALUE given as JSON text
('{"password":"******"}'): set refuses it, naming the path (exit 4).`,
		Args: exactArgs(2, "PATH", "VALUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.write(cmd.Context(), &wf, func(ctx context.Context, w *config.RawWriter) (*config.Release, error) {
				key, err := etcdprov.LeafRel(args[0])
				if err == nil {
					if err := refuseMask(args[0], args[1]); err != nil {
						return nil, err
					}
				}
				if !replace {
					return w.Set(ctx, args[0], args[1], wf.options()...)
				}
				if err != nil {
					return nil, usagef("PATH %q is not a dotted config path like db.port", args[0])
				}
				return w.Modify(ctx, func(c config.Content) error {
					for _, k := range c.Shadowing(key) {
						delete(c, k)
					}
					c[key] = args[1]
					return nil
				}, wf.options()...)
			})
		},
	}
	wf.add(cmd, true)
	cmd.Flags().BoolVar(&replace, "replace", false, "delete the keys beneath PATH (leaves and documents) or the leaf above it in the same release")
	return cmd
}

func (a *app) deleteCommand() *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "delete PATH",
		Short: "Delete the leaf at a dotted path and every leaf beneath it",
		Args:  exactArgs(1, "PATH"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.write(cmd.Context(), &wf, func(ctx context.Context, w *config.RawWriter) (*config.Release, error) {
				return w.Delete(ctx, args[0], wf.options()...)
			})
		},
	}
	wf.add(cmd, true)
	return cmd
}

// refuseMask refuses the mask ****** as the value at path, or anywhere
// inside a value given as JSON text ('{"host":"h","password":"******"}'):
// it is how a secret is shown, and storing it would replace the secret.
// The error names the path that holds it, and is config.ErrInvalid, as
// RawWriter.Set's refusal of a plain ****** is.
func refuseMask(path, value string) error {
	if p, ok := maskIn(path, value); ok {
		return fmt.Errorf("%s is how a secret is shown, not a value: refusing to store it at %s (set the real value; to keep the current one, leave the path alone): %w",
			config.Mask, p, config.ErrInvalid)
	}
	return nil
}

// maskIn returns the first path, in sorted order, at which value (the
// text at path) holds the mask: path itself, or a path inside JSON text.
func maskIn(path, value string) (string, bool) {
	if value == config.Mask {
		return path, true
	}
	t := strings.TrimSpace(value)
	if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "[") {
		return "", false
	}
	var v any
	if json.Unmarshal([]byte(t), &v) != nil {
		return "", false
	}
	return maskInValue(path, v, 0)
}

// maskInValue is maskIn for a decoded JSON value v at path.
func maskInValue(path string, v any, depth int) (string, bool) {
	if depth > 256 {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return path, v == config.Mask
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if p, ok := maskInValue(path+"."+k, v[k], depth+1); ok {
				return p, true
			}
		}
	case []any:
		for i, e := range v {
			if p, ok := maskInValue(path+"."+strconv.Itoa(i), e, depth+1); ok {
				return p, true
			}
		}
	}
	return "", false
}

// writeFunc is one write through a RawWriter: set's, push's, ...
type writeFunc func(context.Context, *config.RawWriter) (*config.Release, error)

// write connects, runs one write through a RawWriter and reports it.
func (a *app) write(ctx context.Context, wf *writeFlags, fn writeFunc) error {
	doc, err := wf.schemaDoc()
	if err != nil {
		return err
	}
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	return a.writeIn(ctx, s, doc, wf, fn)
}

// writeIn runs fn through a RawWriter of the session s, checking against
// the schema doc (nil: the published one), and reports the write.
func (a *app) writeIn(ctx context.Context, s *session, doc []byte, wf *writeFlags, fn writeFunc) error {
	w := s.writer(doc, wf.noCheck)
	unchecked := false
	if doc == nil && !wf.noCheck {
		_, err := w.Schema(ctx)
		unchecked = errors.Is(err, config.ErrNotFound)
	}
	rel, err := fn(ctx, w)
	if err != nil {
		return err
	}
	if unchecked {
		a.warnUnchecked(s.layout.Schema())
	}
	a.reportWrite(rel)
	return nil
}

// warnUnchecked says, once per write, that nothing validated it.
func (a *app) warnUnchecked(schemaKey string) {
	fmt.Fprintf(a.stderr, "strata: warning: no schema is published at %s and no --schema was given: nothing was validated\n", schemaKey)
}

// reportWrite prints the changes of a write and what it did.
func (a *app) reportWrite(rel *config.Release) {
	col := colour(a.stdout)
	switch {
	case rel.DryRun && len(rel.Changes) == 0:
		fmt.Fprintln(a.stdout, "dry run: no changes")
	case rel.DryRun:
		printDiff(a.stdout, keyChanges(rel.Changes), col)
		fmt.Fprintf(a.stdout, "dry run: would write version %d with %s; nothing written\n", rel.Version, plural(len(rel.Changes), "change"))
	case len(rel.Changes) == 0:
		fmt.Fprintf(a.stdout, "no changes: version %d stays (revision %d)\n", rel.Version, rel.Revision)
	default:
		printDiff(a.stdout, keyChanges(rel.Changes), col)
		fmt.Fprintf(a.stdout, "wrote version %d at revision %d: %s\n", rel.Version, rel.Revision, plural(len(rel.Changes), "change"))
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
