package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	etcdprov "github.com/strataconf/strata/providers/etcd"
	"github.com/strataconf/strata/schema"
)

// base is what every page template gets.
type base struct {
	Title    string
	Page     string // nav entry to highlight
	User     string
	CSRF     string
	Prefix   string
	Prefixes []string
	ReadOnly bool
	NoAuth   bool
	// Live is "reload" (the page reloads when the prefix changes) or
	// "mark" (a form page: a banner says it is stale); empty: no updates.
	Live     string
	Revision int64
	Flash    string
	Error    string
}

func (b *base) fill(s *Server, r *http.Request, page, prefix string) {
	b.Page, b.Prefix, b.Prefixes = page, prefix, s.opts.Prefixes
	b.ReadOnly, b.NoAuth = s.opts.ReadOnly, s.opts.NoAuth
	if ss, ok := r.Context().Value(ctxKey{}).(*session); ok {
		b.User, b.CSRF = ss.user, ss.csrf
	}
	if b.Title == "" {
		b.Title = strings.ToUpper(page[:1]) + page[1:]
	}
}

var funcs = template.FuncMap{
	"q":    url.QueryEscape,
	"time": fmtTime,
	"kindMark": func(k config.ChangeKind) string {
		switch k {
		case config.Added:
			return "+"
		case config.Deleted:
			return "−"
		}
		return "~"
	},
	"join": strings.Join,
	"labels": func(m map[string]string) string {
		var parts []string
		for k, v := range m {
			parts = append(parts, k+"="+v)
		}
		slices.Sort(parts)
		return strings.Join(parts, ", ")
	},
	"add": func(a, b int) int { return a + b },
}

func (s *Server) parseTemplates() error {
	s.tmpl = map[string]*template.Template{}
	pages, err := templateFS.ReadDir("templates")
	if err != nil {
		return err
	}
	for _, p := range pages {
		name := strings.TrimSuffix(p.Name(), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+p.Name())
		if err != nil {
			return fmt.Errorf("console: template %s: %w", name, err)
		}
		s.tmpl[name] = t
	}
	return nil
}

// render writes page name with data v.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, v any) {
	var buf bytes.Buffer
	if err := s.tmpl[name].Execute(&buf, v); err != nil {
		s.log.Error("console: render", "page", name, "err", err)
		http.Error(w, "500 internal error: rendering the page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorView struct {
	base
	Status int
}

// fail renders an error page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v := &errorView{Status: status}
	v.Title = http.StatusText(status)
	p, _ := s.prefixOf(r)
	v.fill(s, r, "error", p)
	v.Title = http.StatusText(status)
	v.Error = msg
	s.render(w, r, status, "error", v)
}

// failErr renders the error of an etcd or library call: permission
// denied is 403, a bad request 400, the rest 502.
func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case etcdprov.ErrorIsAuth(err):
		s.fail(w, r, http.StatusForbidden, "etcd denied the request (permission denied): your etcd user may not do this. "+err.Error())
	case errors.Is(err, config.ErrNotFound), errors.Is(err, rollout.ErrNoRollout):
		s.fail(w, r, http.StatusNotFound, err.Error())
	case errors.Is(err, rollout.ErrState), errors.Is(err, rollout.ErrNoChange), errors.Is(err, config.ErrRolloutActive):
		s.fail(w, r, http.StatusConflict, err.Error())
	case errors.Is(err, context.DeadlineExceeded), etcdprov.ErrorIsUnavailable(err):
		s.fail(w, r, http.StatusBadGateway, "etcd did not answer: "+err.Error())
	default:
		s.fail(w, r, http.StatusBadGateway, err.Error())
	}
}

func (s *Server) ctx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.opts.RequestTimeout)
}

// ---- the configuration as shown

// schemaInfo is a prefix's published schema.
type schemaInfo struct {
	doc     []byte
	sch     *schema.Schema
	types   *tree.Types
	secrets []string
	tree    map[string]any // doc decoded, for descriptions
}

func loadSchema(ctx context.Context, w *config.RawWriter) (*schemaInfo, error) {
	si := &schemaInfo{}
	doc, err := w.Schema(ctx)
	if errors.Is(err, config.ErrNotFound) {
		si.types, _ = tree.NewTypes(nil)
		return si, nil
	}
	if err != nil {
		return nil, err
	}
	if si.sch, err = schema.Compile(doc); err != nil {
		return nil, fmt.Errorf("the published schema does not compile: %w", err)
	}
	if si.types, err = tree.NewTypes(doc); err != nil {
		return nil, err
	}
	si.doc, si.secrets = doc, si.sch.SecretPaths()
	_ = json.Unmarshal(doc, &si.tree)
	return si, nil
}

// hidden reports whether the value at path must not be shown: a secret, or
// a key the schema does not allow (a mistyped secret key).
func (si *schemaInfo) hidden(path string) bool {
	if schema.HoldsSecret(si.secrets, path) || schema.IsSecret(si.secrets, path) {
		return true
	}
	return si.sch != nil && si.sch.Unknown(path)
}

// hideChange masks a diff line as the CLI's diff does (tree.UnknownIn:
// values at unknown keys, and documents holding one, are masked; secrets
// are masked by the writer).
func (si *schemaInfo) hideChange(path, old, new string) (string, string) {
	if si.sch == nil {
		return old, new
	}
	if tree.UnknownIn(si.sch, path, old) || tree.UnknownIn(si.sch, path, new) || si.hidden(path) {
		if old != "" {
			old = tree.Mask
		}
		if new != "" {
			new = tree.Mask
		}
	}
	return old, new
}

// describe returns the schema's description of path (following local
// $refs, properties, additionalProperties, items and allOf).
func (si *schemaInfo) describe(path string) string {
	node := si.deref(si.tree)
	for _, seg := range strings.Split(path, ".") {
		if node == nil {
			return ""
		}
		node = si.child(node, seg)
	}
	if node == nil {
		return ""
	}
	d, _ := node["description"].(string)
	return d
}

func (si *schemaInfo) deref(v any) map[string]any {
	m, _ := v.(map[string]any)
	for i := 0; m != nil && i < 16; i++ {
		ref, ok := m["$ref"].(string)
		if !ok || !strings.HasPrefix(ref, "#/") {
			break
		}
		var cur any = si.tree
		for _, tok := range strings.Split(ref[2:], "/") {
			tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
			cm, _ := cur.(map[string]any)
			cur = cm[tok]
		}
		next, _ := cur.(map[string]any)
		if next == nil {
			break
		}
		if _, has := m["description"]; has {
			if _, nextHas := next["description"]; !nextHas {
				cp := map[string]any{}
				for k, v := range next {
					cp[k] = v
				}
				cp["description"] = m["description"]
				next = cp
			}
		}
		m = next
	}
	return m
}

func (si *schemaInfo) child(node map[string]any, seg string) map[string]any {
	if props, ok := node["properties"].(map[string]any); ok {
		if sub, ok := props[seg]; ok {
			return si.deref(sub)
		}
	}
	if _, err := strconv.Atoi(seg); err == nil {
		if it, ok := node["items"]; ok {
			return si.deref(it)
		}
	}
	if ap, ok := node["additionalProperties"].(map[string]any); ok {
		return si.deref(ap)
	}
	if all, ok := node["allOf"].([]any); ok {
		for _, a := range all {
			if c := si.child(si.deref(a), seg); c != nil {
				return c
			}
		}
	}
	return nil
}

// leaf is one row of the configuration table.
type leaf struct {
	Path        string
	Value       string // shown: Mask for hidden values
	Types       string
	Description string
	Secret      bool
}

// current is a prefix's configuration at one revision, as shown.
type current struct {
	content  config.Content
	version  int64
	revision int64
	si       *schemaInfo
	leaves   []leaf
	texts    map[string]string // path → leaf text (masked)
}

func (s *Server) readCurrent(ctx context.Context, r *http.Request, prefix string) (*current, error) {
	w := s.writer(r, prefix)
	content, version, rev, err := w.Read(ctx)
	if err != nil {
		return nil, err
	}
	si, err := loadSchema(ctx, w)
	if err != nil {
		return nil, err
	}
	l := etcdprov.NewLayout(prefix)
	tr, leafPaths, err := tree.Of(l, content)
	if err != nil {
		return nil, fmt.Errorf("the content under %s does not fit the key layout: %w", l.Data(), err)
	}
	shown := tree.MaskSecrets(si.types.Typed(tr, leafPaths), si.secrets)
	texts, err := tree.Texts(shown)
	if err != nil {
		return nil, err
	}
	c := &current{content: content, version: version, revision: rev, si: si, texts: texts}
	for _, p := range slices.Sorted(mapsKeys(texts)) {
		lf := leaf{Path: p, Value: texts[p], Types: strings.Join(si.types.At(p), " | "), Description: si.describe(p)}
		if si.hidden(p) || texts[p] == tree.Mask {
			lf.Value, lf.Secret = tree.Mask, true
			texts[p] = tree.Mask
		}
		c.leaves = append(c.leaves, lf)
	}
	return c, nil
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// diffRow is one line of a diff.
type diffRow struct {
	Kind     config.ChangeKind
	Path     string
	Old, New string
}

func (si *schemaInfo) keyChanges(changes []config.KeyChange) []diffRow {
	out := make([]diffRow, 0, len(changes))
	for _, c := range changes {
		p := tree.KeyPath(c.Key)
		o, n := si.hideChange(p, c.Old, c.New)
		out = append(out, diffRow{Kind: c.Kind, Path: p, Old: o, New: n})
	}
	return out
}

// fieldErrors are the problems of an invalid write, by path ("" for
// those that belong to no field shown).
func fieldErrors(err error) (map[string][]string, bool) {
	var ie *config.InvalidError
	if !errors.As(err, &ie) {
		if errors.Is(err, config.ErrInvalid) {
			return map[string][]string{"": {err.Error()}}, true
		}
		return nil, false
	}
	m := map[string][]string{}
	for _, p := range ie.Problems {
		m[p.Path] = append(m[p.Path], p.Reason)
	}
	if len(ie.Problems) == 0 {
		m[""] = []string{err.Error()}
	}
	return m, true
}

// reasonLines renders fieldErrors' problems in path order: those at path
// at (when at is not empty) as their reasons alone, the others as
// "path: reason" lines.
func reasonLines(fe map[string][]string, at string) (atPath, others []string) {
	for _, p := range slices.Sorted(maps.Keys(fe)) {
		for _, reason := range fe[p] {
			switch {
			case p == at && at != "":
				atPath = append(atPath, reason)
			case p != "":
				others = append(others, p+": "+reason)
			default:
				others = append(others, reason)
			}
		}
	}
	return atPath, others
}

func conflictMessage(err error) (string, bool) {
	var ce *config.ConflictError
	if !errors.As(err, &ce) {
		if errors.Is(err, config.ErrConflict) {
			return "Someone changed the configuration since this page was loaded: nothing was written. " + err.Error(), true
		}
		return "", false
	}
	msg := fmt.Sprintf("Conflict: the configuration changed since this page was loaded (you had version %d, it is now version %d). Nothing was written. Review the fresh diff below and save again if it is still what you want.", ce.Expected, ce.Current)
	if ce.Reason != "" {
		msg = fmt.Sprintf("Conflict: the configuration changed since this page was loaded (%s; it is now version %d). Nothing was written. Review the fresh diff below and save again if it is still what you want.", ce.Reason, ce.Current)
	}
	return msg, true
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
