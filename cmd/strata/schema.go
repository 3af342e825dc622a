package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func (a *app) schemaCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Show or publish the JSON Schema at P/meta/schema",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
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
	cmd := &cobra.Command{
		Use:   "publish -f FILE",
		Short: "Publish a JSON Schema at P/meta/schema (writes are checked against it)",
		Long: `Store the JSON Schema of FILE (- for stdin) at P/meta/schema after checking
that it compiles. Applications using Writer[T] publish their own; this is for
programs in other languages and for hand-written schemas.`,
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
			return a.publishSchema(cmd.Context(), doc)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the JSON Schema file, or - for stdin")
	return cmd
}

func (a *app) publishSchema(ctx context.Context, doc []byte) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.writer(nil, false).PublishSchema(ctx, doc); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "published the schema at %s\n", s.layout.Schema())
	return nil
}
