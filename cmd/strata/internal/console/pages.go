package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// pending is a previewed write waiting for "Save": kept server-side, so
// that values (secrets included) never travel back to the browser.
type pending struct {
	op       string // "set", "delete", "push", "rollback"
	prefix   string
	path     string
	value    string
	doc      map[string]any
	target   int64 // rollback: the release restored
	revision int64 // the revision the page was loaded at (ExpectRevision)
	version  int64
	created  time.Time
}

const maxPending = 32

func (ss *session) put(p *pending) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.pending) >= maxPending {
		for id, old := range ss.pending {
			if time.Since(old.created) > time.Hour || len(ss.pending) >= maxPending {
				delete(ss.pending, id)
			}
		}
	}
	id := randomID()[:24]
	p.created = time.Now()
	ss.pending[id] = p
	return id
}

func (ss *session) take(id string) *pending {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	p := ss.pending[id]
	delete(ss.pending, id)
	return p
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/config?p="+url.QueryEscape(s.opts.Prefixes[0]), http.StatusSeeOther)
}

// prefix returns the request's prefix, or renders 404.
func (s *Server) prefix(w http.ResponseWriter, r *http.Request) (string, bool) {
	p, ok := s.prefixOf(r)
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("The console does not serve the prefix %q.", p))
	}
	return p, ok
}

// ---- Configuration

type configView struct {
	base
	Version int64
	Leaves  []leaf
	Schema  bool
}

func (s *Server) configPage(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	c, err := s.readCurrent(ctx, r, prefix)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := &configView{Version: c.version, Leaves: c.leaves, Schema: c.si.doc != nil}
	v.fill(s, r, "configuration", prefix)
	v.Live, v.Revision = "reload", c.revision
	if n := r.FormValue("saved"); n != "" {
		v.Flash = "Saved: version " + n + "."
	}
	s.render(w, r, http.StatusOK, "config", v)
}

// apiConfig is the configuration as JSON (secrets masked).
func (s *Server) apiConfig(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefixOf(r)
	if !ok {
		http.Error(w, "404 unknown prefix", http.StatusNotFound)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	c, err := s.readCurrent(ctx, r, prefix)
	if err != nil {
		status := http.StatusBadGateway
		if etcdprov.ErrorIsAuth(err) {
			status = http.StatusForbidden
		}
		http.Error(w, err.Error(), status)
		return
	}
	writeJSON(w, map[string]any{"prefix": prefix, "version": c.version, "revision": c.revision, "config": c.texts})
}

type editView struct {
	base
	Path        string
	New         bool
	Value       string
	Secret      bool
	Types       string
	Description string
	Message     string
	Version     int64
	Rev         int64
	FieldErrors []string
	OtherErrors []string
	Conflict    string
	Diff        []diffRow
	Pending     string
	Op          string
	NoChange    bool
}

func (s *Server) editPage(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	c, err := s.readCurrent(ctx, r, prefix)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := s.editView(r, c, prefix, r.FormValue("path"))
	if v.Path == "" {
		v.New = true
	}
	s.render(w, r, http.StatusOK, "edit", v)
}

func (s *Server) editView(r *http.Request, c *current, prefix, path string) *editView {
	v := &editView{Path: path, Version: c.version, Rev: c.revision}
	v.fill(s, r, "configuration", prefix)
	v.Title = "Edit " + path
	v.Live, v.Revision = "mark", c.revision
	v.New = true
	for _, lf := range c.leaves {
		if lf.Path == path {
			v.New, v.Secret, v.Types, v.Description = false, lf.Secret, lf.Types, lf.Description
			if !lf.Secret {
				v.Value = lf.Value
			}
		}
	}
	if v.New && path != "" {
		v.Types = strings.Join(c.si.types.At(path), " | ")
		v.Description = c.si.describe(path)
		v.Secret = c.si.hidden(path)
	}
	return v
}

// editPost previews a set or a delete (a dry run at the revision the page
// was loaded at) and keeps it pending for Save.
func (s *Server) editPost(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	path := strings.TrimSpace(r.PostFormValue("path"))
	value := r.PostFormValue("value")
	op := "set"
	if r.PostFormValue("action") == "delete" {
		op = "delete"
	}
	rev, _ := strconv.ParseInt(r.PostFormValue("rev"), 10, 64)
	ctx, cancel := s.ctx(r)
	defer cancel()
	c, err := s.readCurrent(ctx, r, prefix)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := s.editView(r, c, prefix, path)
	v.Message, v.Op, v.Rev = r.PostFormValue("message"), op, rev
	if !v.Secret {
		v.Value = value
	}
	if _, err := etcdprov.LeafRel(path); err != nil {
		v.FieldErrors = []string{fmt.Sprintf("%q is not a dotted config path like db.port", path)}
		s.render(w, r, http.StatusBadRequest, "edit", v)
		return
	}
	if op == "set" && v.Secret && value == "" && !v.New {
		v.NoChange = true // leave empty to keep
		s.render(w, r, http.StatusOK, "edit", v)
		return
	}
	p := &pending{op: op, prefix: prefix, path: path, value: value, revision: rev}
	s.preview(w, r, p, v)
}

// preview dry-runs p and renders the edit page with its diff (or why it
// cannot be written).
func (s *Server) preview(w http.ResponseWriter, r *http.Request, p *pending, v *editView) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	wr := s.writer(r, p.prefix)
	si, err := loadSchema(ctx, wr)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	rel, err := s.apply(ctx, r, wr, p, si, config.DryRun(), config.ExpectRevision(p.revision))
	if msg, ok := conflictMessage(err); ok {
		// A stale page: say so and show what the write does now.
		v.Conflict = msg
		c, rerr := s.readCurrent(ctx, r, p.prefix)
		if rerr != nil {
			s.failErr(w, r, rerr)
			return
		}
		p.revision, p.version = c.revision, c.version
		v.Rev, v.Version, v.Revision = c.revision, c.version, c.revision
		rel, err = s.apply(ctx, r, wr, p, si, config.DryRun(), config.ExpectRevision(p.revision))
		if err == nil {
			v.Diff = si.keyChanges(rel.Changes)
			v.NoChange = len(rel.Changes) == 0
			if !v.NoChange {
				v.Pending = sessionOf(r).put(p)
			}
		}
		if err == nil || errors.Is(err, config.ErrConflict) {
			s.render(w, r, http.StatusConflict, "edit", v)
			return
		}
	}
	if fe, ok := fieldErrors(err); ok {
		at, other := reasonLines(fe, v.Path)
		v.FieldErrors = append(v.FieldErrors, at...)
		v.OtherErrors = append(v.OtherErrors, other...)
		s.render(w, r, http.StatusUnprocessableEntity, "edit", v)
		return
	}
	if err != nil {
		if etcdprov.ErrorIsAuth(err) {
			s.failErr(w, r, err)
			return
		}
		v.OtherErrors = append(v.OtherErrors, err.Error())
		s.render(w, r, http.StatusBadRequest, "edit", v)
		return
	}
	v.Diff = si.keyChanges(rel.Changes)
	v.NoChange = len(rel.Changes) == 0
	if !v.NoChange {
		v.Pending = sessionOf(r).put(p)
	}
	s.render(w, r, http.StatusOK, "edit", v)
}

// apply runs the write p stands for, through the RawWriter.
func (s *Server) apply(ctx context.Context, r *http.Request, wr *config.RawWriter, p *pending, si *schemaInfo, extra ...config.WriteOption) (*config.Release, error) {
	opts := writeOpts(r, extra...)
	switch p.op {
	case "set":
		return wr.Set(ctx, p.path, p.value, opts...)
	case "delete":
		return wr.Delete(ctx, p.path, opts...)
	case "push":
		if si.sch != nil {
			if err := si.sch.CheckDocument(p.doc); err != nil {
				return nil, invalidOf(err)
			}
		}
		l := etcdprov.NewLayout(p.prefix)
		return wr.Modify(ctx, func(c config.Content) error {
			next, err := tree.Build(l, p.doc, c, si.secrets)
			if err != nil {
				return err
			}
			clear(c)
			maps.Copy(c, next)
			return nil
		}, opts...)
	case "rollback":
		return wr.Rollback(ctx, p.target, opts...)
	}
	return nil, fmt.Errorf("unknown operation %q", p.op)
}

// savePost writes a previewed change, expecting the revision its page was
// loaded at: a stale one becomes a conflict message with a fresh diff.
func (s *Server) savePost(w http.ResponseWriter, r *http.Request) {
	ss := sessionOf(r)
	p := ss.take(r.PostFormValue("pending"))
	if p == nil {
		s.fail(w, r, http.StatusBadRequest, "This preview has expired or was already saved: open the page again.")
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	wr := s.writer(r, p.prefix)
	si, err := loadSchema(ctx, wr)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	rel, err := s.apply(ctx, r, wr, p, si, config.ExpectRevision(p.revision))
	if err == nil {
		dest := "/config?p=" + url.QueryEscape(p.prefix) + "&saved=" + strconv.FormatInt(rel.Version, 10)
		if p.op == "rollback" {
			dest = "/history?p=" + url.QueryEscape(p.prefix) + "&saved=" + strconv.FormatInt(rel.Version, 10)
		}
		http.Redirect(w, r, dest, http.StatusSeeOther)
		return
	}
	if etcdprov.ErrorIsAuth(err) {
		s.failErr(w, r, err)
		return
	}
	switch p.op {
	case "set", "delete":
		c, rerr := s.readCurrent(ctx, r, p.prefix)
		if rerr != nil {
			s.failErr(w, r, rerr)
			return
		}
		v := s.editView(r, c, p.prefix, p.path)
		v.Op, v.Message = p.op, r.PostFormValue("message")
		if !v.Secret {
			v.Value = p.value
		}
		v.Rev = p.revision
		s.preview(w, r, p, v)
	case "push":
		v := &pushView{Format: "yaml"}
		v.fill(s, r, "push", p.prefix)
		v.Message = r.PostFormValue("message")
		v.Rev = p.revision
		s.pushPreview(w, r, p, v)
	default:
		s.rollbackPreview(w, r, p, r.PostFormValue("message"))
	}
}

// invalidOf turns a *schema.ValidationError into a *config.InvalidError
// (copied in short from cmd/strata push.go).
func invalidOf(err error) error {
	fe, ok := schemaFields(err)
	if !ok {
		return err
	}
	return fe
}

// ---- Push

type pushView struct {
	base
	Document    string
	Format      string
	Message     string
	Version     int64
	Rev         int64
	Diff        []diffRow
	Errors      []string
	Conflict    string
	Pending     string
	NoChange    bool
	HasPreview  bool
	FileName    string
	LoadedAtRev int64
}

func (s *Server) pushPage(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	_, version, rev, err := s.writer(r, prefix).Read(ctx)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := &pushView{Format: "yaml", Version: version, Rev: rev}
	v.fill(s, r, "push", prefix)
	v.Live, v.Revision = "mark", rev
	s.render(w, r, http.StatusOK, "push", v)
}

const maxDocument = 4 << 20

func (s *Server) pushPost(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	v := &pushView{Format: r.PostFormValue("format"), Message: r.PostFormValue("message")}
	v.fill(s, r, "push", prefix)
	v.Live = "mark"
	v.Rev, _ = strconv.ParseInt(r.PostFormValue("rev"), 10, 64)
	v.Revision = v.Rev
	text := r.PostFormValue("document")
	if f, fh, err := r.FormFile("file"); err == nil {
		b, err := io.ReadAll(io.LimitReader(f, maxDocument+1))
		f.Close()
		if err == nil && len(b) > 0 {
			text = string(b)
			v.FileName = fh.Filename
			if c, ok := codec.ForPath(fh.Filename); ok {
				for _, name := range []string{"yaml", "json", "toml"} {
					if cc, _ := codec.ForPath("x." + name); cc == c {
						v.Format = name
					}
				}
			}
		}
	}
	// The document is not echoed back: it may hold secrets.
	c, ok := codec.ForPath("x." + strings.ToLower(v.Format))
	if !ok {
		v.Errors = []string{fmt.Sprintf("format %q: want yaml, json or toml", v.Format)}
		s.render(w, r, http.StatusBadRequest, "push", v)
		return
	}
	if len(text) > maxDocument {
		v.Errors = []string{"the document is larger than 4 MiB"}
		s.render(w, r, http.StatusBadRequest, "push", v)
		return
	}
	if c == codec.YAML && tree.YAMLDocuments([]byte(text)) > 1 {
		v.Errors = []string{"the document holds several YAML documents (separated by ---): give one"}
		s.render(w, r, http.StatusBadRequest, "push", v)
		return
	}
	doc, err := c.Unmarshal([]byte(text))
	if err != nil {
		v.Errors = []string{"cannot parse the document: " + err.Error()}
		s.render(w, r, http.StatusBadRequest, "push", v)
		return
	}
	doc = tree.Unwrap(doc)
	if len(doc) == 0 {
		v.Errors = []string{"the document is empty: as the whole configuration it would delete every key (use the CLI with --allow-empty to mean that)"}
		s.render(w, r, http.StatusBadRequest, "push", v)
		return
	}
	p := &pending{op: "push", prefix: prefix, doc: doc, revision: v.Rev}
	s.pushPreview(w, r, p, v)
}

func (s *Server) pushPreview(w http.ResponseWriter, r *http.Request, p *pending, v *pushView) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	wr := s.writer(r, p.prefix)
	si, err := loadSchema(ctx, wr)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v.HasPreview = true
	status := http.StatusOK
	rel, err := s.apply(ctx, r, wr, p, si, config.DryRun(), config.ExpectRevision(p.revision))
	if msg, ok := conflictMessage(err); ok {
		v.Conflict, status = msg, http.StatusConflict
		_, version, rev, rerr := wr.Read(ctx)
		if rerr != nil {
			s.failErr(w, r, rerr)
			return
		}
		p.revision, p.version = rev, version
		v.Rev, v.Version, v.Revision = rev, version, rev
		rel, err = s.apply(ctx, r, wr, p, si, config.DryRun(), config.ExpectRevision(rev))
	}
	if fe, ok := fieldErrors(err); ok {
		_, all := reasonLines(fe, "")
		v.Errors = append(v.Errors, all...)
		s.render(w, r, http.StatusUnprocessableEntity, "push", v)
		return
	}
	if err != nil {
		if etcdprov.ErrorIsAuth(err) {
			s.failErr(w, r, err)
			return
		}
		v.Errors = append(v.Errors, err.Error())
		s.render(w, r, http.StatusBadRequest, "push", v)
		return
	}
	v.Diff = si.keyChanges(rel.Changes)
	v.NoChange = len(rel.Changes) == 0
	if !v.NoChange {
		v.Pending = sessionOf(r).put(p)
	}
	s.render(w, r, status, "push", v)
}
