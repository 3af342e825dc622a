package console

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
)

// ---- Instances

type instanceRow struct {
	config.Instance
	Current  bool
	Rejected string
}

type instancesView struct {
	base
	Version   int64
	Instances []instanceRow
	Running   int
}

func (s *Server) instancesPage(w http.ResponseWriter, r *http.Request) {
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
	ins, err := config.Instances(ctx, s.client(r), prefix)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := &instancesView{Version: version}
	v.fill(s, r, "instances", prefix)
	v.Live, v.Revision = "reload", rev
	for _, in := range ins {
		row := instanceRow{Instance: in, Current: in.AppliedVersion == version}
		if row.Current {
			v.Running++
		}
		if in.RejectedRevision > in.AppliedRevision {
			row.Rejected = fmt.Sprintf("revision %d: %s", in.RejectedRevision, in.RejectedError)
		}
		v.Instances = append(v.Instances, row)
	}
	s.render(w, r, http.StatusOK, "instances", v)
}

// ---- Rollout

type rolloutChange struct {
	Path    string
	Value   string
	Deleted bool
}

type rolloutView struct {
	base
	Report   *rollout.Report
	Changes  []rolloutChange
	Active   bool
	Paused   bool
	Canaries int
	Errors   []string
	Version  int64
	Steps    string
	Bake     string
}

func (s *Server) rolloutPage(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	done := r.FormValue("done")
	if len(done) > 200 {
		done = ""
	}
	s.renderRollout(w, r, prefix, http.StatusOK, nil, done)
}

func (s *Server) renderRollout(w http.ResponseWriter, r *http.Request, prefix string, status int, errs []string, flash string) {
	ctx, cancel := s.ctx(r)
	defer cancel()
	wr := s.writer(r, prefix)
	si, err := loadSchema(ctx, wr)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	_, version, rev, err := wr.Read(ctx)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	v := &rolloutView{Errors: errs, Version: version, Steps: "5,25,100", Bake: "5m"}
	v.fill(s, r, "rollout", prefix)
	v.Flash = flash
	v.Live, v.Revision = "reload", rev
	if len(errs) > 0 {
		v.Live = "mark"
	}
	rep, err := rollout.Status(ctx, s.client(r), prefix)
	switch {
	case errors.Is(err, rollout.ErrNoRollout):
	case err != nil:
		s.failErr(w, r, err)
		return
	default:
		v.Report = rep
		if rep.Rollout != nil {
			v.Active = rep.Rollout.State == "running" || rep.Rollout.State == "paused"
			v.Paused = rep.Rollout.State == "paused"
			for _, c := range rep.Rollout.Changes {
				p := tree.KeyPath(c.Key)
				val := c.Value
				if !c.Deleted && (si.hidden(p) || tree.UnknownIn(si.sch, p, val) && si.sch != nil) {
					val = tree.Mask
				}
				v.Changes = append(v.Changes, rolloutChange{Path: p, Value: val, Deleted: c.Deleted})
			}
		}
		for _, in := range rep.Instances {
			if in.Canary {
				v.Canaries++
			}
		}
	}
	s.render(w, r, status, "rollout", v)
}

// rolloutPost starts, promotes, aborts, pauses or resumes the rollout,
// through package rollout.
func (s *Server) rolloutPost(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefix(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	ss := sessionOf(r)
	cli := s.client(r)
	id := r.PostFormValue("id")
	var err error
	var flash string
	switch action := r.PostFormValue("action"); action {
	case "start":
		var spec rollout.Spec
		spec, err = parseSpec(r)
		if err == nil {
			spec.Author, spec.Message = ss.author, strings.TrimSpace(r.PostFormValue("message"))
			var opts []config.RawWriterOption
			if s.opts.Keyring != nil {
				opts = append(opts, config.WithWriterKeyring(s.opts.Keyring))
			}
			var ro *rollout.Rollout
			if ro, err = rollout.Start(ctx, cli, prefix, spec, opts...); err == nil {
				flash = "Started rollout " + ro.ID + "."
			}
		}
	case "promote":
		var rel *config.Release
		var wopts []config.RawWriterOption
		if s.opts.Keyring != nil {
			wopts = append(wopts, config.WithWriterKeyring(s.opts.Keyring))
		}
		if rel, err = rollout.PromoteWith(ctx, cli, prefix, id, wopts, writeOpts(r)...); err == nil {
			flash = fmt.Sprintf("Promoted: version %d.", rel.Version)
		}
	case "abort":
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if reason == "" {
			reason = "aborted in the console"
		}
		if _, err = rollout.Abort(ctx, cli, prefix, id, reason+" (by "+ss.author+")"); err == nil {
			flash = "Aborted."
		}
	case "pause":
		if _, err = rollout.Pause(ctx, cli, prefix, id, ss.author); err == nil {
			flash = "Paused."
		}
	case "resume":
		if _, err = rollout.Resume(ctx, cli, prefix, id); err == nil {
			flash = "Resumed."
		}
	default:
		s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("Unknown rollout action %q.", action))
		return
	}
	if err != nil {
		if isAuth(err) {
			s.failErr(w, r, err)
			return
		}
		msgs := []string{err.Error()}
		if fe, ok := fieldErrors(err); ok {
			msgs = nil
			for path, reasons := range fe {
				for _, reason := range reasons {
					msgs = append(msgs, strings.TrimPrefix(path+": "+reason, ": "))
				}
			}
		}
		status := http.StatusUnprocessableEntity
		if errors.Is(err, config.ErrConflict) || errors.Is(err, rollout.ErrState) {
			status = http.StatusConflict
		}
		s.renderRollout(w, r, prefix, status, msgs, "")
		return
	}
	http.Redirect(w, r, "/rollout?p="+url.QueryEscape(prefix)+"&done="+url.QueryEscape(flash), http.StatusSeeOther)
}

// parseSpec reads the start form: "set" lines PATH=VALUE, "delete" lines,
// steps, bake and selector.
func parseSpec(r *http.Request) (rollout.Spec, error) {
	spec := rollout.Spec{Set: map[string]string{}, Selector: strings.TrimSpace(r.PostFormValue("selector"))}
	for _, line := range strings.Split(r.PostFormValue("set"), "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return spec, fmt.Errorf("set: %q is not PATH=VALUE", line)
		}
		spec.Set[strings.TrimSpace(k)] = v
	}
	for _, line := range strings.Split(r.PostFormValue("delete"), "\n") {
		if p := strings.TrimSpace(line); p != "" {
			spec.Delete = append(spec.Delete, p)
		}
	}
	if st := strings.TrimSpace(r.PostFormValue("steps")); st != "" {
		for _, f := range strings.Split(st, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return spec, fmt.Errorf("steps %q: want percentages like 5,25,100", st)
			}
			spec.Steps = append(spec.Steps, n)
		}
	}
	if b := strings.TrimSpace(r.PostFormValue("bake")); b != "" {
		d, err := time.ParseDuration(b)
		if err != nil {
			return spec, fmt.Errorf("bake %q: want a duration like 5m", b)
		}
		spec.Bake = d
	}
	if len(spec.Set) == 0 && len(spec.Delete) == 0 {
		return spec, errors.New("the rollout changes nothing: give PATH=VALUE lines to set or paths to delete")
	}
	return spec, nil
}
