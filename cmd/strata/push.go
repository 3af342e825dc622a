package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

const documentHelp = `The document becomes the whole configuration: each leaf at path a.b.c is
written to the leaf key P/data/a/b/c as text (lists as JSON text), and keys
it does not hold are deleted. Where the current content holds a document
key (P/data/a.yaml) or a JSON object leaf whose value the document repeats
unchanged, that key is kept as it is, so pushing the output of get changes
nothing. A secret shown as ****** keeps its current value.`

func (a *app) pushCommand() *cobra.Command {
	var wf writeFlags
	var df docFlags
	cmd := &cobra.Command{
		Use:   "push -f FILE",
		Short: "Make a YAML, JSON or TOML document the whole configuration",
		Long: documentHelp + `

The new configuration is checked against the schema published at P/meta/schema
(or --schema FILE) before anything is written; the changes are shown, key by
key, with secrets masked. With --expect-version N the push is written only if
the newest release is still N (exit 3 otherwise).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := df.read(a.stdin)
			if err != nil {
				return err
			}
			return a.push(cmd.Context(), doc, &wf)
		},
	}
	df.add(cmd)
	wf.add(cmd, true)
	return cmd
}

// push writes doc as the whole content.
func (a *app) push(ctx context.Context, doc map[string]any, wf *writeFlags) error {
	return a.write(ctx, wf, a.pushWrite(doc, wf))
}

// pushWrite is the write of push: doc's shapes checked against the schema,
// then doc made the whole content.
func (a *app) pushWrite(doc map[string]any, wf *writeFlags) writeFunc {
	return func(ctx context.Context, w *config.RawWriter) (*config.Release, error) {
		si, err := loadSchema(ctx, w, wf.schema, a.layout().Schema())
		if err != nil {
			return nil, err
		}
		if !wf.noCheck {
			if err := checkShapes(si, doc, ""); err != nil {
				return nil, err
			}
		}
		return replaceWith(ctx, w, a.layout(), doc, si.secrets, nil, wf.options()...)
	}
}

func (a *app) layout() etcdprov.Layout { return etcdprov.NewLayout(a.g.prefix) }

// replaceWith makes doc the whole content. It is RawWriter.Replace, but
// through Modify, so that the secrets kept (******) and the document keys
// kept come from the very content the write replaces. check, when set,
// runs first on the content read (edit uses it to detect writes made
// around the writer).
func replaceWith(ctx context.Context, w *config.RawWriter, l etcdprov.Layout, doc map[string]any, secrets []string,
	check func(config.Content) error, opts ...config.WriteOption) (*config.Release, error) {
	return w.Modify(ctx, func(c config.Content) error {
		if check != nil {
			if err := check(c); err != nil {
				return err
			}
		}
		next, err := tree.Build(l, doc, c, secrets)
		if err != nil {
			return err
		}
		clear(c)
		maps.Copy(c, next)
		return nil
	}, opts...)
}

func (a *app) diffCommand() *cobra.Command {
	var df docFlags
	var schemaFile string
	cmd := &cobra.Command{
		Use:   "diff -f FILE",
		Short: "Show what push -f FILE would change, without writing",
		Long: `Show, key by key, what push -f FILE would change (secrets masked). Exits 0
whether or not there are changes; exits 4 after the diff when push would be
refused because the new configuration fails the schema.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := df.read(a.stdin)
			if err != nil {
				return err
			}
			return a.diff(cmd.Context(), doc, schemaFile)
		},
	}
	df.add(cmd)
	cmd.Flags().StringVar(&schemaFile, "schema", "", "check against (and mask by) this JSON Schema file instead of the one published at P/meta/schema")
	return cmd
}

func (a *app) diff(ctx context.Context, doc map[string]any, schemaFile string) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	var schemaDoc []byte
	if schemaFile != "" {
		si, err := readSchemaFile(schemaFile)
		if err != nil {
			return err
		}
		schemaDoc = si.doc
	}
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	si, err := loadSchema(ctx, s.writer(nil, false), schemaFile, s.layout.Schema())
	if err != nil {
		return err
	}
	// First the changes whatever their validity, then the check.
	rel, err := replaceWith(ctx, s.writer(schemaDoc, true), s.layout, doc, si.secrets, nil, config.DryRun())
	if err != nil {
		return err
	}
	printDiff(a.stdout, hideUnknown(keyChanges(rel.Changes), si.doc), colour(a.stdout))
	if len(rel.Changes) == 0 {
		fmt.Fprintln(a.stdout, "no changes")
	} else {
		fmt.Fprintf(a.stdout, "push would write version %d with %s\n", rel.Version, plural(len(rel.Changes), "change"))
	}
	if si.doc == nil {
		return nil
	}
	if err := checkShapes(si, doc, ""); err != nil {
		return err
	}
	_, err = replaceWith(ctx, s.writer(schemaDoc, false), s.layout, doc, si.secrets, nil, config.DryRun())
	return err
}

func (a *app) validateCommand() *cobra.Command {
	var df docFlags
	var schemaFile string
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a document against the schema, without writing",
		Long: `Check the configuration push -f FILE would write against the schema published
at P/meta/schema, or --schema FILE. With --schema and no --prefix, etcd is
not contacted (unless the document keeps a secret as ******, whose current
value is then read). Exits 4, listing every failing path, when it is invalid.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, err := df.read(a.stdin)
			if err != nil {
				return err
			}
			return a.validate(cmd.Context(), doc, df.file, schemaFile)
		},
	}
	df.add(cmd)
	cmd.Flags().StringVar(&schemaFile, "schema", "", "check against this JSON Schema file instead of the one published at P/meta/schema")
	return cmd
}

func (a *app) validate(ctx context.Context, doc map[string]any, file, schemaFile string) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	l := a.layout()
	var si *schemaInfo
	var cur config.Content
	if schemaFile != "" {
		var err error
		if si, err = readSchemaFile(schemaFile); err != nil {
			return err
		}
	}
	if si != nil && a.g.prefix == "" {
		if masked := schema.MaskedPaths(doc, si.secrets); len(masked) > 0 {
			return usagef("%s is %q (keep the current secret): give --prefix (or STRATA_PREFIX) to read the current value from etcd, or write the value itself",
				strings.Join(masked, ", "), schema.Masked)
		}
	}
	// etcd is needed for the published schema, and for the current
	// values of secrets the document gives as ******.
	if si == nil || (masksSecret(doc, si.secrets) && a.g.prefix != "") {
		s, err := a.connect(ctx, true)
		if err != nil {
			return err
		}
		defer s.close()
		w := s.writer(nil, false)
		if si == nil {
			if si, err = loadSchema(ctx, w, "", s.layout.Schema()); err != nil {
				return err
			}
			if si.doc == nil {
				return fmt.Errorf("nothing to validate against: no schema published at %s and no --schema: %w", s.layout.Schema(), config.ErrNotFound)
			}
		}
		if cur, _, _, err = w.Read(ctx); err != nil {
			return err
		}
	}
	if err := checkShapes(si, doc, file); err != nil {
		return err
	}
	content, err := tree.Build(l, doc, cur, si.secrets)
	if err != nil {
		return err
	}
	if err := checkContent(l, content, si, file); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "%s is valid against the schema of %s\n", file, si.from)
	return nil
}

// hideUnknown masks the values of the keys the schema does not allow (a
// mistyped secret key, db.pasword, is possibly secret), and of documents
// that hold one.
func hideUnknown(lines []diffLine, schemaDoc []byte) []diffLine {
	if schemaDoc == nil {
		return lines
	}
	sch, err := schema.Compile(schemaDoc)
	if err != nil {
		return lines
	}
	out := make([]diffLine, len(lines))
	for i, l := range lines {
		if tree.UnknownIn(sch, l.path, l.old) || tree.UnknownIn(sch, l.path, l.new) {
			if l.old != "" {
				l.old = tree.Mask
			}
			if l.new != "" {
				l.new = tree.Mask
			}
		}
		out[i] = l
	}
	return out
}

// masksSecret reports whether doc gives a secret path as the mask.
func masksSecret(doc map[string]any, secrets []string) bool {
	return len(schema.MaskedPaths(doc, secrets)) > 0
}

// checkContent checks content against the schema as the writer does, and
// reports each failing path with the document it came from.
func checkContent(l etcdprov.Layout, content config.Content, si *schemaInfo, file string) error {
	sch, err := schema.Compile(si.doc)
	if err != nil {
		return fmt.Errorf("schema of %s: %w", si.from, err)
	}
	tr, _, err := tree.Of(l, content)
	if err != nil {
		return fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	return invalidOf(sch.Check(tr), file)
}

// checkShapes refuses, as invalid, a list or an object in doc where the
// schema wants a string (or another scalar): it would be written as JSON
// text, which a string field accepts, while readers bind a string.
func checkShapes(si *schemaInfo, doc map[string]any, file string) error {
	if si == nil || si.doc == nil {
		return nil
	}
	sch, err := schema.Compile(si.doc)
	if err != nil {
		return fmt.Errorf("schema of %s: %w", si.from, err)
	}
	return invalidOf(sch.CheckDocument(doc), file)
}

// invalidOf turns a *schema.ValidationError of the document file into a
// *config.InvalidError naming each failing path; other errors are returned
// as they are.
func invalidOf(err error, file string) error {
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	ie := &config.InvalidError{}
	for _, fe := range ve.Fields {
		reason := "failed " + fe.Rule
		if fe.Param != "" {
			reason += "=" + fe.Param
		}
		if fe.Rule != "required" && fe.Rule != "additionalProperties" {
			reason += " (value " + showValue(fe.Value) + ")"
		}
		p := config.Problem{Path: fe.Path, Reason: reason}
		if fe.Rule != "required" && file != "" {
			p.Origin = config.Origin{Layer: config.LayerFile, Key: file}
		}
		ie.Problems = append(ie.Problems, p)
	}
	return ie
}
