package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
)

func (a *app) editCommand() *cobra.Command {
	var wf writeFlags
	var allowEmpty bool
	cmd := &cobra.Command{
		Use:   "edit",
		Short: "Edit the configuration in $EDITOR and push it",
		Long: `Write the configuration (YAML, as get shows it) to a temporary file, open it in
$EDITOR (else $VISUAL, else vi), and push the result with the release
version that was read as the expected version, like kubectl edit.

An unchanged file cancels the edit. If someone changed the configuration in
the meantime (through strata or around it) the push is refused with exit
code 3; if the result fails the schema, exit code 4. In both cases, and when
the file does not parse, the edited file is kept and its path printed, so
that no work is lost: fix it and push it with push -f FILE.

The edited file is read as push reads a document: a file of several YAML
documents (---) or with a key given twice is refused, and so is a file
emptied of every key (it would delete the whole configuration) unless
--allow-empty is given; the file is kept then too.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.edit(cmd.Context(), &wf, allowEmpty)
		},
	}
	wf.add(cmd, false)
	cmd.Flags().BoolVar(&allowEmpty, "allow-empty", false, "accept a file emptied of every key (no keys, null or only comments): it makes the configuration empty")
	return cmd
}

// editorCommand returns the command that edits path: $EDITOR, else
// $VISUAL, else vi. An editor with arguments ("code --wait") is run by the
// shell, as git and kubectl do, so that its quoting works.
func editorCommand(path string) (*exec.Cmd, string) {
	ed := "vi"
	for _, env := range []string{"EDITOR", "VISUAL"} {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			ed = v
			break
		}
	}
	if !strings.ContainsAny(ed, " \t'\"") {
		return exec.Command(ed, path), ed
	}
	if runtime.GOOS == "windows" {
		f := strings.Fields(ed)
		return exec.Command(f[0], append(f[1:], path)...), ed
	}
	return exec.Command("sh", "-c", ed+` "$1"`, "sh", path), ed
}

const editHeader = `# Edit the configuration and save to push it; an unchanged file cancels.
# Secrets shown as ****** keep their current value. Lines starting with # are ignored.
`

// edit runs strata edit; allowEmpty accepts an edited file without keys.
func (a *app) edit(ctx context.Context, wf *writeFlags, allowEmpty bool) error {
	schemaDoc, err := wf.schemaDoc()
	if err != nil {
		return err
	}
	rctx, cancel := a.withTimeout(ctx)
	s, err := a.connect(rctx, true)
	if err != nil {
		cancel()
		return err
	}
	defer s.close()
	cur, err := a.readCurrent(rctx, s, wf.schema, false)
	cancel()
	if err != nil {
		return err
	}
	body, err := cur.yamlDocument()
	if err != nil {
		return err
	}
	orig := append([]byte(editHeader), body...)
	f, err := os.CreateTemp("", "strata-edit-*.yaml")
	if err != nil {
		return err
	}
	path := f.Name()
	_, err = f.Write(orig)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	keep := func(err error) error { return &savedError{err: err, path: path} }

	// An interrupt while the editor runs is the editor's business (vi uses
	// Ctrl-C): the editor is not killed, and the push that follows is not
	// cancelled. To abandon the edit, leave the file unchanged.
	ctx = context.WithoutCancel(ctx)
	ed, name := editorCommand(path)
	ed.Stdin, ed.Stdout, ed.Stderr = a.stdin, a.stdout, a.stderr
	if err := ed.Run(); err != nil {
		return keep(fmt.Errorf("editor %s: %w", name, err))
	}
	edited, err := os.ReadFile(path)
	if err != nil {
		return keep(err)
	}
	if bytes.Equal(edited, orig) {
		os.Remove(path)
		fmt.Fprintln(a.stdout, "edit cancelled, no changes")
		return nil
	}
	doc, err := decodeDocument(codec.YAML, path, edited, allowEmpty)
	if err != nil {
		return keep(err)
	}
	if !wf.noCheck {
		if err := checkShapes(cur.schema, doc, path); err != nil {
			return keep(err)
		}
	}

	wctx, cancel := a.withTimeout(ctx)
	defer cancel()
	w := s.writer(schemaDoc, wf.noCheck)
	// ExpectRevision refuses the write when anything under the prefix
	// changed since the edited content was read: a release, or a key
	// written or deleted around the writer (etcdctl).
	opts := append(wf.options(), config.ExpectVersion(cur.version), config.ExpectRevision(cur.revision))
	rel, err := replaceWith(wctx, w, s.layout, doc, cur.schema.secrets, nil, opts...)
	if err != nil {
		return keep(err)
	}
	if schemaDoc == nil && cur.schema.doc == nil && !wf.noCheck {
		a.warnUnchecked(s.layout.Schema())
	}
	if !rel.DryRun && len(rel.Changes) == 0 {
		os.Remove(path)
		fmt.Fprintln(a.stdout, "edit cancelled, no changes")
		return nil
	}
	if !rel.DryRun {
		os.Remove(path)
	} else {
		fmt.Fprintf(a.stderr, "strata: dry run: your edit is kept in %s\n", path)
	}
	a.reportWrite(rel)
	return nil
}
