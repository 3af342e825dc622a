package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/schema"
)

func (a *app) schemaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Show or publish the JSON Schema at P/meta/schema",
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.schemaShowCommand(), a.schemaPublishCommand())
	for _, c := range cmd.Commands() {
		c.SilenceErrors, c.SilenceUsage = true, true
	}
	return cmd
}

func (a *app) schemaShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show",
		Short: "Print the JSON Schema published at P/meta/schema",
		Args:  maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := a.withTimeout(cmd.Context())
			defer cancel()
			s, err := a.connect(ctx, true)
			if err != nil {
				return err
			}
			defer s.close()
			doc, err := s.writer(nil, false).Schema(ctx)
			if err != nil {
				return err
			}
			if !bytes.HasSuffix(doc, []byte("\n")) {
				doc = append(doc, '\n')
			}
			_, err = a.stdout.Write(doc)
			return err
		},
	}
}

func (a *app) schemaPublishCommand() *cobra.Command {
	var file string
	var wf writeFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "publish -f FILE",
		Short: "Publish a JSON Schema at P/meta/schema (writes are checked against it)",
		Long: `Store the JSON Schema of FILE (- for stdin) at P/meta/schema after checking
that it compiles and that the current configuration satisfies it (refused with
the failing paths, exit 4, unless --force). The change is a release: history
lists it with the schema's hash. --dry-run checks only. Applications using
Writer[T] publish their own; this is for programs in other languages and for
hand-written schemas.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return usagef("missing -f FILE")
			}
			var doc []byte
			var err error
			if file == "-" {
				doc, err = io.ReadAll(a.stdin)
			} else {
				doc, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			name := file
			if file == "-" {
				name = "stdin"
			}
			if _, err := schema.Compile(doc); err != nil {
				return fmt.Errorf("%s: %w", name, schemaError(err, name))
			}
			return a.publishSchema(cmd.Context(), doc, &wf, force)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the JSON Schema file, or - for stdin")
	cmd.Flags().BoolVar(&force, "force", false, "publish even if the current configuration does not satisfy the schema")
	cmd.Flags().StringVarP(&wf.message, "message", "m", "", "why the schema changes (recorded in the release)")
	cmd.Flags().StringVar(&wf.author, "author", "", "who changes it (default: the OS user)")
	cmd.Flags().BoolVar(&wf.dryRun, "dry-run", false, "check without publishing")
	wf.cmd = cmd
	return cmd
}

func (a *app) publishSchema(ctx context.Context, doc []byte, wf *writeFlags, force bool) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	opts := wf.options()
	if wf.message == "" {
		opts = append(opts, config.Message("publish schema"))
	}
	rel, err := s.writer(nil, force).PublishSchema(ctx, doc, opts...)
	if err != nil {
		return err
	}
	switch {
	case rel.DryRun && rel.Schema == "":
		fmt.Fprintf(a.stdout, "dry run: the schema at %s is already this one\n", s.layout.Schema())
	case rel.DryRun && force:
		fmt.Fprintf(a.stdout, "dry run: would publish the schema at %s as version %d (not checked against the current configuration: --force)\n", s.layout.Schema(), rel.Version)
	case rel.DryRun:
		fmt.Fprintf(a.stdout, "dry run: the current configuration satisfies the schema; would publish it at %s as version %d\n", s.layout.Schema(), rel.Version)
	case rel.Schema == "":
		fmt.Fprintf(a.stdout, "the schema at %s is already this one: nothing written\n", s.layout.Schema())
	default:
		fmt.Fprintf(a.stdout, "published the schema at %s: version %d at revision %d\n", s.layout.Schema(), rel.Version, rel.Revision)
	}
	return nil
}
