package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/config"
)

// maxChangesShown bounds the keys history lists per release.
const maxChangesShown = 4

func (a *app) historyCommand() *cobra.Command {
	n := 20
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the releases, newest first",
		Long: `List the newest releases (each write through strata or the library is one),
newest first, with the keys each changed (+ added, ~ changed, - deleted).
When the data differs from the newest release because someone wrote around
the writer (etcdctl put), the list starts with an entry marked unrecorded,
whose VERSION is -.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.history(cmd.Context(), n)
		},
	}
	cmd.Flags().VarP(natural[int]{&n}, "limit", "n", "list at most this many releases (0: all that are kept)")
	return cmd
}

func (a *app) history(ctx context.Context, n int) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	rels, err := s.writer(nil, false).History(ctx, n)
	if err != nil {
		return err
	}
	if n > 0 && len(rels) > n {
		rels = rels[:n] // an unrecorded entry comes on top of n releases
	}
	if len(rels) == 0 {
		fmt.Fprintf(a.stdout, "no releases under %s\n", s.layout.Prefix())
		return nil
	}
	t := newTable(a.stdout, "VERSION", "REVISION", "TIME", "AUTHOR", "MESSAGE", "CHANGES")
	for _, r := range rels {
		version, when, msg := strconv.FormatInt(r.Version, 10), r.Time.UTC().Format(time.RFC3339), r.Message
		changes := changeSummary(r.Changes)
		switch {
		case r.Unrecorded:
			version, when, msg = "-", "", "(unrecorded) "+r.Message
		case r.Err != nil:
			when, msg = "", "(corrupt record: "+r.Err.Error()+")"
		}
		if r.Schema != "" {
			changes = strings.TrimSpace(changes + " (schema " + r.Schema[:min(len(r.Schema), len("sha256:")+12)] + ")")
		}
		if len(r.Outside) > 0 {
			outside := changeSummary(r.Outside)
			if r.OutsideMore > 0 {
				outside += fmt.Sprintf(" and %d more", r.OutsideMore)
			}
			changes = strings.TrimSpace(changes + " (outside strata before it: " + outside + ")")
		}
		t.row(version, strconv.FormatInt(r.Revision, 10), when, r.Author, msg, changes)
	}
	return t.flush()
}

// changeSummary lists changed keys as "~db.port +db.host -old".
func changeSummary(changes []config.KeyChange) string {
	var parts []string
	for i, c := range changes {
		if i == maxChangesShown {
			parts = append(parts, fmt.Sprintf("(+%d more)", len(changes)-i))
			break
		}
		mark := "~"
		switch c.Kind {
		case config.Added:
			mark = "+"
		case config.Deleted:
			mark = "-"
		}
		parts = append(parts, mark+showText(tree.KeyPath(c.Key)))
	}
	return strings.Join(parts, " ")
}

func (a *app) rollbackCommand() *cobra.Command {
	var wf writeFlags
	cmd := &cobra.Command{
		Use:   "rollback VERSION",
		Short: "Restore the content of an earlier release, as a new release",
		Long: `Write a new release whose content equals that of release VERSION (see history).
It works from the release record alone, so etcd's compaction does not stop
it. The restored content is checked against the schema like any write.`,
		Args: exactArgs(1, "VERSION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || n < 1 {
				return usagef("VERSION %q: want a release number (1, 2, ...)", args[0])
			}
			return a.write(cmd.Context(), &wf, func(ctx context.Context, w *config.RawWriter) (*config.Release, error) {
				rel, err := w.Rollback(ctx, n, wf.options()...)
				if errors.Is(err, config.ErrNotFound) {
					err = withKeptReleases(ctx, w, n, err)
				}
				return rel, err
			})
		},
	}
	wf.add(cmd, true)
	return cmd
}

// withKeptReleases adds to the error of a rollback to a release that is
// not found which releases are kept ("releases 3..7 are kept").
func withKeptReleases(ctx context.Context, w *config.RawWriter, n int64, err error) error {
	rels, herr := w.History(ctx, 0)
	if herr != nil {
		return err
	}
	var versions []int64
	for _, r := range rels {
		if !r.Unrecorded && r.Err == nil && r.Version > 0 {
			versions = append(versions, r.Version)
		}
	}
	slices.Sort(versions)
	if slices.Contains(versions, n) {
		return err // kept, yet not found: the error says why
	}
	switch len(versions) {
	case 0:
		return fmt.Errorf("%w; no releases are kept", err)
	case 1:
		return fmt.Errorf("%w; only release %d is kept", err, versions[0])
	}
	return fmt.Errorf("%w; releases %s are kept", err, versionRanges(versions))
}

// versionRanges renders sorted versions as "1..3, 5, 7..9".
func versionRanges(vs []int64) string {
	var parts []string
	for i := 0; i < len(vs); {
		j := i
		for j+1 < len(vs) && vs[j+1] == vs[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.FormatInt(vs[i], 10))
		} else {
			parts = append(parts, fmt.Sprintf("%d..%d", vs[i], vs[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}
