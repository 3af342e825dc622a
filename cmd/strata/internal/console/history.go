package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// ---- History

type releaseRow struct {
	Version     int64
	Revision    int64
	Time        string
	Author      string
	Message     string
	Unrecorded  bool
	Corrupt     string
	Schema      string
	RollbackOf  int64
	Changes     []diffRow
	Outside     []diffRow
	OutsideMore int // keys changed outside beyond those listed
}

type historyView struct {
	base
	Current  int64
	Releases []releaseRow
	Versions []int64
}

func (s *Server) historyPage(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	wr := s.writer(r, prefix)
	si, err := loadSchema(ctx, wr)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	rels, err := wr.History(ctx, 0)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	_, version, rev, err := wr.Read(ctx)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := &historyView{Current: version}
	v.fill(s, r, "history", prefix)
	v.Live, v.Revision = "reload", rev
	if n := r.FormValue("saved"); n != "" {
		v.Flash = "Rolled back: version " + n + " restores the earlier release."
	}
	for _, rel := range rels {
		row := releaseRow{Version: rel.Version, Revision: rel.Revision, Author: rel.Author, Message: rel.Message,
			Unrecorded: rel.Unrecorded, Schema: rel.Schema, RollbackOf: rel.RollbackOf,
			Changes: si.keyChanges(rel.Changes), Outside: si.keyChanges(rel.Outside), OutsideMore: rel.OutsideMore}
		if !rel.Time.IsZero() {
			row.Time = fmtTime(rel.Time)
		}
		if rel.Err != nil {
			row.Corrupt = rel.Err.Error()
		} else if !rel.Unrecorded && rel.Version > 0 {
			v.Versions = append(v.Versions, rel.Version)
		}
		v.Releases = append(v.Releases, row)
	}
	s.render(w, r, http.StatusOK, "history", v)
}

type diffView struct {
	base
	From, To int64
	Diff     []diffRow
	Versions []int64
}

// diffPage shows the diff between two retained releases.
func (s *Server) diffPage(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	from, err1 := strconv.ParseInt(r.FormValue("from"), 10, 64)
	to, err2 := strconv.ParseInt(r.FormValue("to"), 10, 64)
	if err1 != nil || err2 != nil || from < 1 || to < 1 {
		s.fail(w, r, http.StatusBadRequest, "Give two release versions, from and to.")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	wr := s.writer(r, prefix)
	si, err := loadSchema(ctx, wr)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	l := etcdprov.NewLayout(prefix)
	texts := func(n int64) (map[string]string, error) {
		_, c, err := wr.Release(ctx, n)
		if err != nil {
			return nil, err
		}
		t, _, err := tree.Of(l, c)
		if err != nil {
			return nil, err
		}
		return tree.Texts(t)
	}
	a, err := texts(from)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	b, err := texts(to)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := &diffView{From: from, To: to}
	v.fill(s, r, "history", prefix)
	v.Title = "Diff"
	for _, c := range tree.Diff(a, b, si.secrets) {
		o, n := si.hideChange(c.Path, c.Old, c.New)
		v.Diff = append(v.Diff, diffRow{Kind: c.Kind, Path: c.Path, Old: o, New: n})
	}
	s.render(w, r, http.StatusOK, "diff", v)
}

type rollbackView struct {
	base
	Target   int64
	Version  int64
	Diff     []diffRow
	Conflict string
	Errors   []string
	Pending  string
	Message  string
	NoChange bool
}

// rollbackPost asks for confirmation: it dry-runs the rollback and shows
// its diff, kept pending for Save.
func (s *Server) rollbackPost(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	n, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
	if err != nil || n < 1 {
		s.fail(w, r, http.StatusBadRequest, "Give the release version to roll back to.")
		return
	}
	rev, _ := strconv.ParseInt(r.PostFormValue("rev"), 10, 64)
	ctx, cancel := s.ctx(r)
	defer cancel()
	if rev == 0 {
		_, _, cur, err := s.writer(r, prefix).Read(ctx)
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		rev = cur
	}
	s.rollbackPreview(w, r, &pending{op: "rollback", prefix: prefix, target: n, revision: rev}, r.PostFormValue("message"))
}

func (s *Server) rollbackPreview(w http.ResponseWriter, r *http.Request, p *pending, msg string) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	wr := s.writer(r, p.prefix)
	si, err := loadSchema(ctx, wr)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := &rollbackView{Target: p.target, Message: msg}
	v.fill(s, r, "history", p.prefix)
	v.Title = "Roll back to version " + strconv.FormatInt(p.target, 10)
	v.Live = "mark"
	status := http.StatusOK
	rel, err := s.apply(ctx, r, wr, p, si, config.DryRun(), config.ExpectRevision(p.revision))
	if m, ok := conflictMessage(err); ok {
		v.Conflict, status = m, http.StatusConflict
		_, _, rev, rerr := wr.Read(ctx)
		if rerr != nil {
			s.failErr(w, r, rerr)
			return
		}
		p.revision = rev
		rel, err = s.apply(ctx, r, wr, p, si, config.DryRun(), config.ExpectRevision(rev))
	}
	if err != nil {
		if etcdprov.ErrorIsAuth(err) {
			s.failErr(w, r, err)
			return
		}
		if errors.Is(err, config.ErrNotFound) {
			s.fail(w, r, http.StatusNotFound, err.Error())
			return
		}
		if fe, ok := fieldErrors(err); ok {
			for path, reasons := range fe {
				for _, reason := range reasons {
					v.Errors = append(v.Errors, path+": "+reason)
				}
			}
		} else {
			v.Errors = append(v.Errors, err.Error())
		}
		s.render(w, r, http.StatusUnprocessableEntity, "rollback", v)
		return
	}
	v.Revision = p.revision
	v.Version = rel.Version
	v.Diff = si.keyChanges(rel.Changes)
	v.NoChange = len(rel.Changes) == 0
	if !v.NoChange {
		v.Pending = sessionOf(r).put(p)
	}
	s.render(w, r, status, "rollback", v)
}

// ---- helpers

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// schemaFields turns a *schema.ValidationError into a *config.InvalidError
// naming each failing path (as the CLI's invalidOf).
func schemaFields(err error) (error, bool) {
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		return err, false
	}
	ie := &config.InvalidError{}
	for _, fe := range ve.Fields {
		reason := "failed " + fe.Rule
		if fe.Param != "" {
			reason += "=" + fe.Param
		}
		if fe.Rule != "required" && fe.Rule != "additionalProperties" {
			val := fe.Value
			if fe.Secret {
				val = tree.Mask
			}
			reason += " (value " + val + ")"
		}
		ie.Problems = append(ie.Problems, config.Problem{Path: fe.Path, Reason: reason})
	}
	return ie, true
}
