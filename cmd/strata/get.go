package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/config"
)

func (a *app) getCommand() *cobra.Command {
	var output, schemaFile string
	cmd := &cobra.Command{
		Use:   "get [PATH]",
		Short: "Print the configuration, or the value at one dotted path",
		Long: `Print the configuration tree under P as applications read it, or the value
at one dotted path (db.port). YAML output starts with a comment giving the
release version and etcd revision; JSON output is wrapped as
{"version": V, "revision": R, "config": {...}} (with a PATH:
{"version", "revision", "path", "value"}).

Leaf keys hold text; where the schema (published, or --schema) gives a path
a number, boolean, list or object type, the text is shown as that type, so
that pushing the output of get changes nothing. Secret values are shown as
******; pushing ****** back keeps the current secret.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "yaml" && output != "json" {
				return usagef("-o %q: want yaml or json", output)
			}
			path := ""
			if len(args) == 1 {
				path = args[0]
			}
			return a.get(cmd.Context(), path, output, schemaFile)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "yaml", "output format: yaml or json")
	cmd.Flags().StringVar(&schemaFile, "schema", "", "render and mask by this JSON Schema file instead of the one published at P/meta/schema")
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
func (a *app) readCurrent(ctx context.Context, s *session, schemaFile string) (*current, error) {
	w := s.writer(nil, false)
	content, version, rev, err := w.Read(ctx)
	if err != nil {
		return nil, err
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
	shown := tree.MaskSecrets(types.Typed(tr, leafPaths), si.secrets)
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

func (a *app) get(ctx context.Context, path, output, schemaFile string) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	c, err := a.readCurrent(ctx, s, schemaFile)
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
	var out []byte
	switch {
	case output == "json" && path == "":
		out, err = marshalJSON(struct {
			Version  int64 `json:"version"`
			Revision int64 `json:"revision"`
			Config   any   `json:"config"`
		}{c.version, c.revision, v})
	case output == "json":
		out, err = marshalJSON(struct {
			Version  int64  `json:"version"`
			Revision int64  `json:"revision"`
			Path     string `json:"path"`
			Value    any    `json:"value"`
		}{c.version, c.revision, path, v})
	case path == "":
		out, err = c.yamlDocument()
	default:
		var body []byte
		body, err = marshalYAML(v)
		out = append([]byte(fmt.Sprintf("# version %d, revision %d, path %s\n", c.version, c.revision, path)), body...)
	}
	if err != nil {
		return err
	}
	_, err = a.stdout.Write(out)
	return err
}
