package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/schema"
)

// schemaInfo is the JSON Schema in force for a command.
type schemaInfo struct {
	doc     []byte // nil: none
	from    string // "--schema app.json", "P/meta/schema"
	secrets []string
}

// readSchemaFile reads and compiles the schema of --schema.
func readSchemaFile(path string) (*schemaInfo, error) {
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--schema: %w", err)
	}
	sch, err := schema.Compile(doc)
	if err != nil {
		return nil, fmt.Errorf("--schema %s: %w", path, schemaError(err, path))
	}
	return &schemaInfo{doc: doc, from: path, secrets: sch.SecretPaths()}, nil
}

// loadSchema returns the schema of --schema FILE if given, else the one
// published at P/meta/schema, else an empty schemaInfo.
func loadSchema(ctx context.Context, w *config.RawWriter, file, key string) (*schemaInfo, error) {
	if file != "" {
		return readSchemaFile(file)
	}
	doc, err := w.Schema(ctx)
	if errors.Is(err, config.ErrNotFound) {
		return &schemaInfo{}, nil
	}
	if err != nil {
		return nil, err
	}
	sch, err := schema.Compile(doc)
	if err != nil {
		return nil, fmt.Errorf("the schema published at %s does not compile: %w", key, schemaError(err, key))
	}
	return &schemaInfo{doc: doc, from: key, secrets: sch.SecretPaths()}, nil
}

// docFlags are -f FILE and --format.
type docFlags struct {
	file       string
	format     string
	allowEmpty bool
}

func (d *docFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&d.file, "file", "f", "", "the document: a .yaml, .yml, .json or .toml file, or - for stdin (with --format)")
	cmd.Flags().StringVar(&d.format, "format", "", "the document's format: yaml, json or toml (default: by the file's extension)")
	cmd.Flags().BoolVar(&d.allowEmpty, "allow-empty", false, "accept an empty document (no keys, null or only comments): it makes the configuration empty")
}

// read reads and parses the document (see decodeDocument). The JSON
// envelope that `get -o json` prints ({"kind": "strata-config", "version",
// "revision", "config"}) is unwrapped, so its output can be pushed back.
func (d *docFlags) read(stdin io.Reader) (map[string]any, error) {
	if d.file == "" {
		return nil, usagef("missing -f FILE (or -f - with --format to read stdin)")
	}
	var c codec.Codec
	switch {
	case d.format != "":
		var ok bool
		if c, ok = codec.ForPath("x." + strings.ToLower(d.format)); !ok {
			return nil, usagef("--format %q: want yaml, json or toml", d.format)
		}
	case d.file == "-":
		return nil, usagef("-f - reads stdin: give its --format (yaml, json or toml)")
	default:
		var ok bool
		if c, ok = codec.ForPath(d.file); !ok {
			return nil, usagef("cannot tell the format of %s by its extension: give --format (yaml, json or toml)", d.file)
		}
	}
	var b []byte
	var err error
	name := d.file
	if d.file == "-" {
		name = "stdin"
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(d.file)
	}
	if err != nil {
		return nil, err
	}
	return decodeDocument(c, name, b, d.allowEmpty)
}

// decodeDocument parses b, the document name (a file, stdin) in the format
// of c, as the whole configuration: a YAML stream of several documents is
// refused, and so are duplicate keys (by the codecs); get's JSON envelope
// is unwrapped (tree.Unwrap); an empty document (no keys, null, only
// comments) is refused unless allowEmpty, as it would delete every key.
// push, diff, validate and edit read their documents through it.
func decodeDocument(c codec.Codec, name string, b []byte, allowEmpty bool) (map[string]any, error) {
	if c == codec.YAML {
		if n := tree.YAMLDocuments(b); n > 1 {
			return nil, fmt.Errorf("%s holds %d YAML documents (separated by ---): give one document", name, n)
		}
	}
	doc, err := c.Unmarshal(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	doc = tree.Unwrap(doc)
	if len(doc) == 0 && !allowEmpty {
		return nil, fmt.Errorf("%s is empty (no keys, null, or only comments): as the whole configuration it would delete every key under P/data; give --allow-empty to mean that", name)
	}
	return doc, nil
}

// writeFlags are the options of every write.
type writeFlags struct {
	message string
	author  string
	expect  int64
	dryRun  bool
	noCheck bool
	force   bool
	schema  string
	cmd     *cobra.Command
}

func (wf *writeFlags) add(cmd *cobra.Command, expect bool) {
	wf.cmd = cmd
	f := cmd.Flags()
	f.StringVarP(&wf.message, "message", "m", "", "why the change is made (recorded in the release)")
	f.StringVar(&wf.author, "author", "", "who makes the change (default: the OS user)")
	f.BoolVar(&wf.dryRun, "dry-run", false, "check and show the change without writing it")
	f.BoolVar(&wf.noCheck, "no-validate", false, "write without checking against any schema (readers reject invalid content)")
	f.StringVar(&wf.schema, "schema", "", "check against (and mask by) this JSON Schema file instead of the one published at P/meta/schema")
	f.BoolVar(&wf.force, "force", false, "write even while a rollout holds the prefix: the rollout is aborted in the same transaction")
	if expect {
		f.Var(natural[int64]{&wf.expect}, "expect-version", "write only if the newest release is this version (0: no release yet); else exit 3")
	}
}

// options returns the write options of the flags.
func (wf *writeFlags) options() []config.WriteOption {
	opts := []config.WriteOption{config.Author(wf.authorName())}
	if wf.message != "" {
		opts = append(opts, config.Message(wf.message))
	}
	if fl := wf.cmd.Flags().Lookup("expect-version"); fl != nil && fl.Changed {
		opts = append(opts, config.ExpectVersion(wf.expect))
	}
	if wf.dryRun {
		opts = append(opts, config.DryRun())
	}
	if wf.force {
		opts = append(opts, config.Force())
	}
	return opts
}

func (wf *writeFlags) authorName() string {
	if wf.author != "" {
		return wf.author
	}
	return osUser()
}

// osUser is the name of the user running the program.
func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, env := range []string{"USER", "USERNAME"} {
		if v := os.Getenv(env); v != "" {
			return v
		}
	}
	return "unknown"
}

// schemaDoc returns the schema of --schema (nil: the published one, which
// the writer reads itself).
func (wf *writeFlags) schemaDoc() ([]byte, error) {
	if wf.schema == "" {
		return nil, nil
	}
	si, err := readSchemaFile(wf.schema)
	if err != nil {
		return nil, err
	}
	return si.doc, nil
}
