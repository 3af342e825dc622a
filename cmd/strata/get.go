package main

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/secret"
)

func (a *app) getCommand() *cobra.Command {
	var output, schemaFile string
	var showSecrets bool
	cmd := &cobra.Command{
		Use:   "get [PATH]",
		Short: "Print the configuration, or the value at one dotted path",
		Long: `Print the configuration tree under P as applications read it, or the value
at one dotted path (db.port). YAML output starts with a comment giving the
release version and etcd revision; JSON output is wrapped as
{"kind": "strata-config", "version": V, "revision": R, "config": {...}}
(with a PATH: {"version", "revision", "path", "value"}). push unwraps that
envelope, and only a document whose kind is "strata-config": a document
whose keys are version, revision and config alone is pushed as it is.

Leaf keys hold text; where the schema (published, or --schema) gives a path
a number, boolean, list or object type, the text is shown as that type, so
that pushing the output of get changes nothing. Secret values are shown as
******; pushing ****** back keeps the current secret.

--show-secrets prints secret values in clear. It needs --key-file (or
STRATA_KEY_FILE): the values sealed with one of its keys are opened, and
get fails, naming the path and the key id, when one does not open (its key
is not in the file, or it was changed). Without --show-secrets the key file
is not used by get.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "yaml" && output != "json" {
				return usagef("-o %q: want yaml or json", output)
			}
			if showSecrets && a.g.keyFile == "" {
				return usagef("--show-secrets needs --key-file FILE (or STRATA_KEY_FILE): the key file that opens the sealed secret values")
			}
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			return a.get(cmd.Context(), path, output, schemaFile, showSecrets)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	cmd.Flags().StringVar(&schemaFile, "schema", "", "render and mask by this JSON Schema file instead of the one published at P/meta/schema")
	cmd.Flags().BoolVar(&showSecrets, "show-secrets", false, "print secret values in clear, opened with the keys of --key-file (required)")
	return cmd
}

// current is the configuration under P at one revision, as shown to people.
type current struct {
	content  config.Content
	version  int64
	revision int64
	schema   *schemaInfo
	shown    map[string]any // typed by the schema, secrets masked
}

// readCurrent reads the content, its schema and the tree get shows.
// showSecrets leaves secret values unmasked; every sealed value must then
// have been opened (s has a keyring).
func (a *app) readCurrent(ctx context.Context, s *session, schemaFile string, showSecrets bool) (*current, error) {
	w := s.writer(nil, false)
	content, version, rev, err := w.Read(ctx)
	if err != nil {
		return nil, err
	}
	if showSecrets {
		if err := checkOpened(ctx, s, content); err != nil {
			return nil, err
		}
	}
	si, err := loadSchema(ctx, w, schemaFile, s.layout.Schema())
	if err != nil {
		return nil, err
	}
	tr, leafPaths, err := tree.Of(s.layout, content)
	if err != nil {
		return nil, fmt.Errorf("the content under %s does not fit the key layout: %w", s.layout.Data(), err)
	}
	types, err := tree.NewTypes(si.doc)
	if err != nil {
		return nil, err
	}
	shown := types.Typed(tr, leafPaths)
	if !showSecrets {
		shown = tree.MaskSecrets(shown, si.secrets)
	}
	return &current{content: content, version: version, revision: rev, schema: si, shown: shown}, nil
}

// yamlDocument renders the shown tree with its header comment.
func (c *current) yamlDocument() ([]byte, error) {
	body, err := marshalYAML(c.shown)
	if err != nil {
		return nil, err
	}
	return append([]byte(fmt.Sprintf("# version %d, revision %d\n", c.version, c.revision)), body...), nil
}

func (a *app) get(ctx context.Context, path, output, schemaFile string, showSecrets bool) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	if !showSecrets {
		// Sealed values stay sealed: a value sealed at a path the schema
		// no longer marks secret shows as its envelope, never in clear.
		s.ring = nil
	}
	c, err := a.readCurrent(ctx, s, schemaFile, showSecrets)
	if err != nil {
		return err
	}
	var v any = c.shown
	if path != "" {
		var ok bool
		if v, ok = tree.Lookup(c.shown, path); !ok {
			return fmt.Errorf("no value at %s under %s (version %d, revision %d): %w", path, s.layout.Prefix(), c.version, c.revision, config.ErrNotFound)
		}
	}
	out, err := c.render(path, v, output)
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(out)
	return err
}

// render returns what get prints of v, the value at path of c.shown ("":
// the whole tree), in output "yaml" or "json": YAML after a comment line
// giving the version and revision; JSON in an envelope that gives them
// too, for the whole tree with kind tree.Envelope, so that push unwraps it
// (tree.Unwrap) and only it.
func (c *current) render(path string, v any, output string) ([]byte, error) {
	switch {
	case output == "json" && path == "":
		return marshalJSON(struct {
			Kind     string `json:"kind"`
			Version  int64  `json:"version"`
			Revision int64  `json:"revision"`
			Config   any    `json:"config"`
		}{tree.Envelope, c.version, c.revision, v})
	case output == "json":
		return marshalJSON(struct {
			Version  int64  `json:"version"`
			Revision int64  `json:"revision"`
			Path     string `json:"path"`
			Value    any    `json:"value"`
		}{c.version, c.revision, path, v})
	case path == "":
		return c.yamlDocument()
	}
	body, err := marshalYAML(v)
	if err != nil {
		return nil, err
	}
	return append([]byte(fmt.Sprintf("# version %d, revision %d, path %s\n", c.version, c.revision, path)), body...), nil
}

// checkOpened fails when a leaf value of content is still sealed: the
// writer could not open it with the keyring of s. The error is the one
// opening it gives (the path and the key id, never the value or a key).
func checkOpened(ctx context.Context, s *session, content config.Content) error {
	keys := make([]string, 0, len(content))
	for k := range content {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		v := content[k]
		if !secret.IsSealed(v) || path.Ext(k) != "" { // documents are not sealed
			continue
		}
		_, err := secret.Open(ctx, s.ring, s.layout.Prefix(), strings.ReplaceAll(k, "/", "."), v)
		if err == nil {
			err = errors.New("sealed value left unopened")
		}
		errs = append(errs, fmt.Errorf("etcd key %s: %w", s.layout.DataKey(k), err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("--show-secrets: cannot open every secret with --key-file %s: %w", s.a.g.keyFile, errors.Join(errs...))
	}
	return nil
}
