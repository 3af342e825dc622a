package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
)

// ANSI colours for diffs.
const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	reset  = "\x1b[0m"
)

// colour reports whether output to w may be coloured: w is a terminal
// (a character device) and NO_COLOR is not set to a non-empty value
// (no-color.org: an empty NO_COLOR does not turn colour off).
func colour(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// paint wraps s in an ANSI colour when on is set.
func paint(on bool, c, s string) string {
	if !on {
		return s
	}
	return c + s + reset
}

// showValue renders a value text on one line: quoted when it is empty,
// has leading or trailing spaces, holds control characters (a document's
// newlines) or is not valid UTF-8 (as showText quotes it).
func showValue(s string) string {
	if s == "" || strings.TrimSpace(s) != s || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// showText renders a name, path, author or message on one line: as is,
// unless it holds control characters (which a terminal would obey: colours,
// cursor moves, a changed window title) or invalid UTF-8; then quoted, with
// them escaped as Go does (\x1b, \a, \r).
func showText(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) && r != ' ' {
			return strconv.Quote(s)
		}
	}
	return s
}

// diffLine is one line of a diff: a path and what happened to it.
type diffLine struct {
	kind     config.ChangeKind
	path     string
	old, new string
}

func keyChanges(changes []config.KeyChange) []diffLine {
	out := make([]diffLine, len(changes))
	for i, c := range changes {
		out[i] = diffLine{kind: c.Kind, path: tree.KeyPath(c.Key), old: c.Old, new: c.New}
	}
	return out
}

// printDiff writes one line per change: "+ path: new", "- path: old",
// "~ path: old → new"; green, red and yellow on a terminal.
func printDiff(w io.Writer, lines []diffLine, col bool) {
	for _, l := range lines {
		path := showText(l.path)
		switch l.kind {
		case config.Added:
			fmt.Fprintln(w, paint(col, green, "+ "+path+": "+showValue(l.new)))
		case config.Deleted:
			fmt.Fprintln(w, paint(col, red, "- "+path+": "+showValue(l.old)))
		default:
			fmt.Fprintln(w, paint(col, yellow, "~ "+path+": "+showValue(l.old)+" → "+showValue(l.new)))
		}
	}
}

// marshalYAML renders a tree (sorted keys, two-space indent) or a single
// value.
func marshalYAML(v any) ([]byte, error) {
	if m, ok := v.(map[string]any); ok {
		return codec.YAML.Marshal(m)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

// marshalJSON renders v indented by two spaces, without HTML escaping.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode json: %w", err)
	}
	return buf.Bytes(), nil
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	t.row(header...)
	return t
}

// row writes one line; tabs and newlines in a cell become spaces, and a
// cell that still holds control characters is shown quoted (showText).
func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = showText(strings.NewReplacer("\t", " ", "\n", " ").Replace(c))
		if cells[i] == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }
