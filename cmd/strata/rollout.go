package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	"github.com/strataconf/strata/codec"
	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/rollout"
	"github.com/strataconf/strata/internal/canary"
	"github.com/strataconf/strata/schema"
)

const rolloutLong = `A rollout applies a change to a share of the running instances first (the
canaries), step by step, and to everyone only when it is promoted:

  strata rollout start --set db.pool=20 --steps 5,25,100 --bake 5m --selector zone=eu-1
  strata rollout run          # the controller: advances the steps, promotes or aborts
  strata rollout status --watch

The rollout is stored at P/meta/rollout. Each instance (a Config with an
instance id) decides for itself whether it is a canary: its labels match the
selector and a stable hash of its id and the rollout's id falls under the
step's percentage, so the canaries of a step stay canaries in the next. A
canary applies the candidate through its normal validation and reports, in
its instance record, whether it applied or rejected it, and its health.

The controller (strata rollout run, or rollout.Run inside any application;
one is elected among those running) moves to the next step after each bake
time and promotes after the last one: one release, checked against the
version the rollout started from. It aborts on its own when a canary rejects
the candidate, turns degraded, or disappears. Abort puts every canary back on
the base content; nothing is written to P/data.

While a rollout is running or paused, plain writes to the prefix (set, push,
delete, edit, rollback) are refused with exit code 1; --force writes anyway
and aborts the rollout.`

func (a *app) rolloutCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll a change out to canary instances step by step, then promote or abort it",
		Long:  rolloutLong,
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		a.rolloutStartCommand(),
		a.rolloutStatusCommand(),
		a.rolloutPromoteCommand(),
		a.rolloutAbortCommand(),
		a.rolloutPauseCommand(),
		a.rolloutResumeCommand(),
		a.rolloutRunCommand(),
	)
	for _, c := range cmd.Commands() {
		c.SilenceErrors, c.SilenceUsage = true, true
	}
	return cmd
}

// startFlags are the flags of rollout start.
type startFlags struct {
	file, format string
	set, del     []string
	steps        string
	bake         time.Duration
	selector     string
	message      string
	author       string
	id           string
	dryRun       bool
}

func (a *app) rolloutStartCommand() *cobra.Command {
	var sf startFlags
	cmd := &cobra.Command{
		Use:   "start (-f FILE | --set PATH=VALUE ... | --delete PATH ...)",
		Short: "Start a rollout of a change: set and delete leaves, on canaries first",
		Long: `Start a rollout of a change to the current configuration. The change is given
as a document (-f FILE: each of its leaves, at path a.b.c, sets the leaf key
P/data/a/b/c; the keys it does not hold are left alone), as --set PATH=VALUE
(repeated), as --delete PATH (repeated), or a mix of them. The resulting
configuration is checked against the published schema like any write (exit 4
when it fails) before the rollout is created; nothing is written to P/data
until it is promoted.

--steps are the percentages of the matching instances that are canaries at
each step, strictly increasing and ending with 100; each step lasts --bake.
--selector limits the canaries to the instances whose labels match
(zone=eu-1,tier!=batch); the others take the change only when it is promoted.

--dry-run checks the change and shows it with the instances that are running
now and would be canaries at each step, without starting anything. Which
instances are canaries depends on the rollout's id, drawn anew by each start:
the dry run prints the id it drew, and start --id ID starts that very rollout
(as long as no release is written in between).`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rolloutStart(cmd.Context(), &sf)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&sf.file, "file", "f", "", "a .yaml, .yml, .json or .toml document whose leaves the change sets (- for stdin, with --format)")
	f.StringVar(&sf.format, "format", "", "the document's format: yaml, json or toml (default: by the file's extension)")
	f.StringArrayVar(&sf.set, "set", nil, "set the leaf at PATH to VALUE (PATH=VALUE; repeatable)")
	f.StringArrayVar(&sf.del, "delete", nil, "delete the leaf at PATH and every leaf beneath it (repeatable)")
	f.StringVar(&sf.steps, "steps", joinSteps(rollout.DefaultSteps()), "the canary percentages of the steps, increasing, ending with 100")
	f.DurationVar(&sf.bake, "bake", rollout.DefaultBake, "how long each step runs before the next")
	f.StringVar(&sf.selector, "selector", "", "only instances whose labels match are canaries: key=value,key!=value,...")
	f.StringVarP(&sf.message, "message", "m", "", "why the change is made (recorded in the rollout and its release)")
	f.StringVar(&sf.author, "author", "", "who makes the change (default: the OS user)")
	f.BoolVar(&sf.dryRun, "dry-run", false, "check the change and show the canaries of each step without starting the rollout")
	f.StringVar(&sf.id, "id", "", "the rollout's id, as a --dry-run printed it (default: a new one); it decides which instances are canaries")
	return cmd
}

// joinSteps renders steps as the --steps flag takes them: "5,25,100".
func joinSteps(steps []int) string {
	s := make([]string, len(steps))
	for i, n := range steps {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseSteps reads --steps: percentages separated by commas, each may end
// with %.
func parseSteps(s string) ([]int, error) {
	var steps []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.TrimSpace(f), "%")
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, usagef("--steps %q: want percentages separated by commas, like 5,25,100", s)
		}
		steps = append(steps, n)
	}
	if err := canary.CheckSteps(steps); err != nil {
		return nil, usagef("--steps %q: want percentages from 1 to 100, strictly increasing, the last one 100", s)
	}
	return steps, nil
}

// spec turns the flags into the rollout's spec; stdin is read for -f -.
// doc is the document of -f, nil without.
func (sf *startFlags) spec(a *app) (spec rollout.Spec, doc map[string]any, err error) {
	spec = rollout.Spec{Set: map[string]string{}, Bake: sf.bake, Message: sf.message, Author: sf.author, ID: sf.id}
	if spec.Author == "" {
		spec.Author = osUser()
	}
	if spec.Steps, err = parseSteps(sf.steps); err != nil {
		return spec, nil, err
	}
	if sf.bake <= 0 {
		return spec, nil, usagef("--bake must be positive, not %v", sf.bake)
	}
	sel, err := canary.ParseSelector(sf.selector)
	if err != nil {
		return spec, nil, usagef("--selector %q: want terms key=value or key!=value separated by commas (zone=eu-1,tier!=batch)", sf.selector)
	}
	spec.Selector = sel.String()
	from := map[string]string{} // path → the flag that gave it
	if sf.file != "" {
		df := docFlags{file: sf.file, format: sf.format, allowEmpty: true}
		if doc, err = df.read(a.stdin); err != nil {
			return spec, nil, err
		}
		texts, err := tree.Texts(doc)
		if err != nil {
			return spec, nil, fmt.Errorf("%s: %w", sf.file, err)
		}
		for p, v := range texts {
			if err := checkPath(p); err != nil {
				return spec, nil, fmt.Errorf("%s: %w", sf.file, err)
			}
			spec.Set[p], from[p] = v, "-f "+sf.file
		}
	} else if sf.format != "" {
		return spec, nil, usagef("--format is for -f FILE")
	}
	for _, s := range sf.set {
		p, v, ok := strings.Cut(s, "=")
		if !ok {
			return spec, nil, usagef("--set %q: want PATH=VALUE", s)
		}
		if err := checkPath(p); err != nil {
			return spec, nil, err
		}
		if f, dup := from[p]; dup {
			return spec, nil, usagef("%s is given twice (%s and --set)", p, f)
		}
		spec.Set[p], from[p] = v, "--set"
	}
	for _, p := range sf.del {
		if err := checkPath(p); err != nil {
			return spec, nil, err
		}
		if f, dup := from[p]; dup {
			return spec, nil, usagef("%s is given twice (%s and --delete)", p, f)
		}
		spec.Delete, from[p] = append(spec.Delete, p), "--delete"
	}
	if len(from) == 0 {
		if sf.file != "" {
			return spec, nil, fmt.Errorf("%s sets nothing: nothing to roll out", sf.file)
		}
		return spec, nil, usagef("nothing to roll out: give -f FILE, --set PATH=VALUE or --delete PATH")
	}
	return spec, doc, nil
}

// keepSecrets drops from spec.Set the secrets doc gives as ******: as in
// push, they keep their current value.
func keepSecrets(spec *rollout.Spec, doc map[string]any, si *schemaInfo) {
	for _, p := range schema.MaskedPaths(doc, si.secrets) {
		if spec.Set[p] == tree.Mask {
			delete(spec.Set, p)
		}
	}
}

func (a *app) rolloutStart(ctx context.Context, sf *startFlags) error {
	spec, doc, err := sf.spec(a) // usage errors need no etcd
	if err != nil {
		return err
	}
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	si, err := loadSchema(ctx, s.writer(nil, false), "", s.layout.Schema())
	if err != nil {
		return err
	}
	if doc != nil {
		keepSecrets(&spec, doc, si)
		if len(spec.Set) == 0 && len(spec.Delete) == 0 {
			return fmt.Errorf("%s only keeps secrets as they are: nothing to roll out", sf.file)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(spec.Set)) {
		if err := refuseMask(p, spec.Set[p]); err != nil {
			return err
		}
	}
	opts := []config.RawWriterOption{config.WithWriteTimeout(a.requestTimeout())}
	if s.ring != nil {
		opts = append(opts, config.WithWriterKeyring(s.ring)) // the candidate's secrets sealed in the record
	}
	if sf.dryRun {
		if err := a.rolloutPlan(ctx, s, spec, opts, si); err != nil {
			return err
		}
		if si.doc == nil {
			a.warnUnchecked(s.layout.Schema())
		}
		return nil
	}
	r, err := rollout.Start(ctx, s.cli, s.layout.Prefix(), spec, opts...)
	if err != nil {
		return oneAtATime(err, s)
	}
	if si.doc == nil {
		a.warnUnchecked(s.layout.Schema())
	}
	cur, err := rolloutBase(ctx, s, r)
	if err != nil {
		return err
	}
	printDiff(a.stdout, rolloutDiff(r, cur, si), colour(a.stdout))
	fmt.Fprintf(a.stdout, "started rollout %s from version %d with %s: %s\n", showText(r.ID), r.Base, plural(len(r.Changes), "change"), rolloutPlanText(r))
	return nil
}

// oneAtATime rewords the error of a start refused because a rollout holds
// the prefix (the write commands' words would point to --force).
func oneAtATime(err error, s *session) error {
	var rae *config.RolloutActiveError
	if !errors.As(err, &rae) {
		return err
	}
	return &reworded{err: err, msg: fmt.Sprintf("rollout %s is %s on %s: one rollout at a time: promote or abort it first (strata rollout promote|abort)",
		rae.ID, rae.State, s.layout.Prefix())}
}

// rolloutPlanText renders the steps, bake and selector of r:
// "steps 5%, 25%, 100%, 5m0s each, instances zone=eu-1".
func rolloutPlanText(r *rollout.Rollout) string {
	steps := make([]string, len(r.Steps))
	for i, n := range r.Steps {
		steps[i] = strconv.Itoa(n) + "%"
	}
	s := fmt.Sprintf("steps %s, %v each", strings.Join(steps, ", "), time.Duration(r.Bake))
	if r.Selector != "" {
		s += ", instances " + showText(r.Selector)
	} else {
		s += ", all instances"
	}
	return s
}

// rolloutPlan is start --dry-run: the change and who would be a canary at
// each step among the instances running now.
func (a *app) rolloutPlan(ctx context.Context, s *session, spec rollout.Spec, opts []config.RawWriterOption, si *schemaInfo) error {
	r, err := rollout.Plan(ctx, s.cli, s.layout.Prefix(), spec, opts...)
	if err != nil {
		return oneAtATime(err, s)
	}
	cur, _, _, err := s.writer(nil, false).Read(ctx)
	if err != nil {
		return err
	}
	instances, err := config.Instances(ctx, s.cli, s.layout.Prefix())
	if err != nil {
		return err
	}
	printDiff(a.stdout, rolloutDiff(r, cur, si), colour(a.stdout))
	sel, _ := canary.ParseSelector(r.Selector)
	matching := 0
	for _, in := range instances {
		if sel.Matches(in.Labels) {
			matching++
		}
	}
	fmt.Fprintf(a.stdout, "dry run: would start rollout %s from version %d with %s: %s\n", showText(r.ID), r.Base, plural(len(r.Changes), "change"), rolloutPlanText(r))
	if r.Selector != "" {
		fmt.Fprintf(a.stdout, "%d of the %s running match %s (the others take the change when it is promoted); canaries at each step:\n",
			matching, plural(len(instances), "instance"), showText(r.Selector))
	} else {
		fmt.Fprintf(a.stdout, "of the %s running, canaries at each step:\n", plural(len(instances), "instance"))
	}
	for i, pct := range r.Steps {
		var ids []string
		for _, in := range rollout.Members(r, instances, i) {
			ids = append(ids, showText(in.ID))
		}
		line := fmt.Sprintf("  step %d of %d (%d%%): %s", i+1, len(r.Steps), pct, canaries(len(ids)))
		if len(ids) > 0 {
			line += ": " + strings.Join(ids, ", ")
		}
		fmt.Fprintln(a.stdout, line)
	}
	fmt.Fprintf(a.stdout, "nothing written; start --id %s starts this very rollout\n", showText(r.ID))
	return nil
}

// canaries says "no canaries", "1 canary", "2 canaries".
func canaries(n int) string {
	switch n {
	case 0:
		return "no canaries"
	case 1:
		return "1 canary"
	}
	return fmt.Sprintf("%d canaries", n)
}

// rolloutDiff lists the changes of r against the content cur, secrets and
// keys the schema does not know masked.
func rolloutDiff(r *rollout.Rollout, cur config.Content, si *schemaInfo) []diffLine {
	lines := make([]diffLine, 0, len(r.Changes))
	for _, c := range r.Changes {
		old, had := cur[c.Key]
		l := diffLine{kind: config.Changed, path: tree.KeyPath(c.Key), old: old, new: c.Value}
		switch {
		case c.Deleted:
			l.kind, l.new = config.Deleted, ""
		case !had:
			l.kind, l.old = config.Added, ""
		}
		if keyHoldsSecret(si.secrets, c.Key) {
			if l.old != "" {
				l.old = tree.Mask
			}
			if l.new != "" {
				l.new = tree.Mask
			}
		}
		lines = append(lines, l)
	}
	slices.SortFunc(lines, func(x, y diffLine) int { return strings.Compare(x.path, y.path) })
	return hideUnknown(lines, si.doc)
}

// keyHoldsSecret reports whether a data key (relative to P/data/) holds a
// secret value: a leaf at or above a secret path, or a document with a
// secret inside (the writer's rule for release changes).
func keyHoldsSecret(secrets []string, key string) bool {
	p := key
	_, isDoc := codec.ForPath(key)
	if isDoc {
		p = p[:strings.LastIndex(p, ".")]
	}
	p = strings.ReplaceAll(p, "/", ".")
	if schema.HoldsSecret(secrets, p) {
		return true
	}
	if isDoc {
		for _, s := range secrets {
			if p == "" || strings.HasPrefix(s, p+".") {
				return true
			}
		}
	}
	return false
}

func (a *app) rolloutStatusCommand() *cobra.Command {
	var output string
	var watch bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the rollout: its step, time left, and the instances on base, on the candidate or rejecting it",
		Long: `Show the rollout of the prefix (the one running, or the last one): its state,
step and the time left in the step's bake, the abort reason if any, its
changes (secrets masked), and each instance: whether it is a canary and
whether it runs the base content, the candidate, or rejected the candidate
(with the error). -o json prints the same as one JSON object.

--watch prints the status again on every change of the rollout or of the
instance records, until the rollout is promoted or aborted and every
instance reports the content it converges on (or 10 s after the end, or an
interrupt, SIGINT or SIGTERM); it then exits 0.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usagef("-o %q: want text or json", output)
			}
			return a.rolloutStatus(cmd.Context(), output, watch)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print the status again on every change until the rollout ends")
	return cmd
}

func (a *app) rolloutStatus(ctx context.Context, output string, watch bool) error {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(rctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	if !watch {
		rep, err := rollout.Status(rctx, s.cli, s.layout.Prefix())
		if errors.Is(err, rollout.ErrNoRollout) {
			return a.noRollout(s, output)
		}
		if err != nil {
			return err
		}
		return a.printStatus(rctx, s, rep, output)
	}
	cancel() // each read below has its own --command-timeout

	// Watch the rollout record and the instance records, and print the
	// status again after every change (when it reads differently).
	w := &metaWatch{s: s}
	defer w.stop()
	if err := w.start(ctx); err != nil {
		return err
	}
	last := ""
	var ended time.Time // when the rollout was first seen ended
	for {
		rctx, cancel := a.withTimeout(ctx)
		text, state, err := a.renderStatus(rctx, s, output)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if text != last {
			if last != "" && output == "text" {
				fmt.Fprintln(a.stdout)
			}
			fmt.Fprint(a.stdout, text)
			flush(a.stdout)
			last = text
		}
		if state != watchRunning && ended.IsZero() {
			ended = time.Now()
		}
		if state == watchSettled || (state == watchEnded && time.Since(ended) >= settleTime) {
			return nil
		}
		wait := time.Duration(0) // no limit
		if state == watchEnded {
			wait = settleTime - time.Since(ended)
		}
		if !w.next(ctx, wait) {
			return nil // interrupted: the normal end
		}
	}
}

// settleTime bounds how long status --watch goes on after the rollout
// ended, waiting for the instances to report the content they converge on.
const settleTime = 10 * time.Second

// Where a watched rollout stands.
const (
	watchRunning = iota // running or paused
	watchEnded          // promoted or aborted; instances still converging
	watchSettled        // ended, and every instance on the final content (or no rollout)
)

// metaWatch follows the rollout record and the instance records.
type metaWatch struct {
	s      *session
	cancel context.CancelFunc
	ch     clientv3.WatchChan
}

// start watches P/meta/ from the revision of a read made now.
func (w *metaWatch) start(ctx context.Context) error {
	w.stop()
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	rctx, rcancel := context.WithTimeout(wctx, w.s.a.requestTimeout())
	resp, err := w.s.cli.Get(rctx, w.s.layout.Rollout(), clientv3.WithCountOnly())
	rcancel()
	if err != nil {
		cancel()
		return err
	}
	w.cancel = cancel
	w.ch = w.s.cli.Watch(wctx, w.s.layout.Meta(), clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	return nil
}

func (w *metaWatch) stop() {
	if w.cancel != nil {
		w.cancel()
	}
}

// next waits for a change of the rollout record or of an instance record,
// or for max to pass (0: no limit); it reports false when ctx ends. When
// the watch breaks (no leader, compaction), it starts again, and that
// counts as a change: the next read shows what was missed.
func (w *metaWatch) next(ctx context.Context, max time.Duration) bool {
	var timeout <-chan time.Time
	if max > 0 {
		t := time.NewTimer(max)
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return false
		case <-timeout:
			return true
		case wr, ok := <-w.ch:
			if !ok || wr.Err() != nil {
				select {
				case <-ctx.Done():
					return false
				case <-time.After(500 * time.Millisecond):
				}
				for w.start(ctx) != nil {
					select {
					case <-ctx.Done():
						return false
					case <-time.After(time.Second):
					}
				}
				return true
			}
			for _, ev := range wr.Events {
				k := string(ev.Kv.Key)
				if k == w.s.layout.Rollout() || strings.HasPrefix(k, w.s.layout.Instances()) {
					return true
				}
			}
		}
	}
}

// renderStatus reads the status and renders it, and says where the
// rollout stands (watchRunning, watchEnded, watchSettled).
func (a *app) renderStatus(ctx context.Context, s *session, output string) (text string, state int, err error) {
	var b strings.Builder
	saved := a.stdout
	a.stdout = &b
	defer func() { a.stdout = saved }()
	rep, err := rollout.Status(ctx, s.cli, s.layout.Prefix())
	if errors.Is(err, rollout.ErrNoRollout) {
		err = a.noRollout(s, output)
		return b.String(), watchSettled, err
	}
	if err != nil {
		return "", 0, err
	}
	if err := a.printStatus(ctx, s, rep, output); err != nil {
		return "", 0, err
	}
	tl := rep.Tally
	switch {
	case rep.Rollout.State.Active():
		state = watchRunning
	case rep.Rollout.State == rollout.Promoted && tl.OnCandidate == tl.Instances,
		rep.Rollout.State == rollout.Aborted && tl.OnBase == tl.Instances:
		state = watchSettled
	default:
		state = watchEnded
	}
	return b.String(), state, nil
}

// noRollout says there is no rollout record.
func (a *app) noRollout(s *session, output string) error {
	if output == "json" {
		_, err := fmt.Fprintln(a.stdout, "null")
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "no rollout under %s\n", s.layout.Prefix())
	return err
}

// printStatus writes a status report.
func (a *app) printStatus(ctx context.Context, s *session, rep *rollout.Report, output string) error {
	si, err := loadSchema(ctx, s.writer(nil, false), "", s.layout.Schema())
	if err != nil {
		return err
	}
	if output == "json" {
		out, err := marshalJSON(maskReport(rep, si))
		if err != nil {
			return err
		}
		_, err = a.stdout.Write(out)
		return err
	}
	r := rep.Rollout
	w := a.stdout
	fmt.Fprintf(w, "rollout %s: %s\n", showText(r.ID), stateLine(rep))
	if r.Reason != "" {
		fmt.Fprintf(w, "reason: %s\n", showText(r.Reason))
	}
	by := ""
	if r.Author != "" {
		by = " by " + showText(r.Author)
	}
	if r.Message != "" {
		by += ": " + showText(r.Message)
	}
	fmt.Fprintf(w, "from version %d%s\n", r.Base, by)
	fmt.Fprintf(w, "plan: %s\n", rolloutPlanText(r))
	cur, err := rolloutBase(ctx, s, r)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "changes:")
	var b strings.Builder
	printDiff(&b, rolloutDiff(r, cur, si), colour(a.stdout))
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if line != "" {
			fmt.Fprint(w, "  "+line)
		}
	}
	if len(rep.Instances) == 0 {
		fmt.Fprintf(w, "no instances registered under %s\n", s.layout.Instances())
	} else {
		t := newTable(w, "INSTANCE", "LABELS", "CANARY", "ON", "VERSION", "HEALTH", "ERROR")
		for _, in := range rep.Instances {
			canaryCell := "no"
			if in.Canary {
				canaryCell = "yes"
			}
			errCell := ""
			switch {
			case in.On == rollout.OnRejected:
				errCell = in.CandidateError
			case in.HealthReason != "":
				errCell = in.HealthReason
			}
			t.row(in.ID, labels(in.Labels), canaryCell, in.On, strconv.FormatInt(in.AppliedVersion, 10), in.Health, errCell)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	tl := rep.Tally
	fmt.Fprintf(w, "%d on the candidate, %d on base, %d rejected", tl.OnCandidate, tl.OnBase, tl.Rejected)
	if r.State.Active() {
		fmt.Fprintf(w, "; %d of %d matching instances are canaries", tl.Canaries, tl.Matching)
		if tl.Pending > 0 {
			fmt.Fprintf(w, ", %d not on the candidate yet", tl.Pending)
		}
	}
	fmt.Fprintln(w)
	return nil
}

// rolloutBase is the content the changes of r are shown against: the
// current content while it holds the prefix, else that of its base
// release (after promotion the current content is the candidate).
func rolloutBase(ctx context.Context, s *session, r *rollout.Rollout) (config.Content, error) {
	w := s.writer(nil, false)
	if r.State.Active() {
		cur, _, _, err := w.Read(ctx)
		return cur, err
	}
	_, cur, err := w.Release(ctx, r.Base)
	if err != nil {
		return config.Content{}, nil // not kept: show the changes without old values
	}
	return cur, nil
}

// stateLine says where a rollout stands: "running, step 2 of 3 (25%),
// 3m12s left of 5m0s".
func stateLine(rep *rollout.Report) string {
	r := rep.Rollout
	step := fmt.Sprintf("step %d of %d", r.Step+1, len(r.Steps))
	if r.Step >= 0 && r.Step < len(r.Steps) {
		step += fmt.Sprintf(" (%d%%)", r.Steps[r.Step])
	}
	left := time.Duration(rep.BakeLeft).Round(time.Second)
	switch r.State {
	case rollout.Running:
		return fmt.Sprintf("running, %s, %v left of its %v bake", step, left, time.Duration(r.Bake))
	case rollout.Paused:
		return fmt.Sprintf("paused at %s, %v left of its %v bake", step, left, time.Duration(r.Bake))
	case rollout.Promoted:
		return fmt.Sprintf("promoted as version %d at %s", r.Release, step)
	case rollout.Aborted:
		return "aborted at " + step
	}
	return string(r.State) + ", " + step
}

// maskReport returns the report as -o json shows it: besides the values
// at secret paths (which Status masks), those of keys the schema does not
// allow (a mistyped secret, db.pasword), as diffs hide them.
func maskReport(rep *rollout.Report, si *schemaInfo) *rollout.Report {
	out := *rep
	r := *rep.Rollout
	r.Changes = slices.Clone(r.Changes)
	lines := make([]diffLine, len(r.Changes))
	for i, c := range r.Changes {
		lines[i] = diffLine{kind: config.Added, path: tree.KeyPath(c.Key), new: c.Value}
		if keyHoldsSecret(si.secrets, c.Key) {
			lines[i].new = tree.Mask
		}
	}
	for i, l := range hideUnknown(lines, si.doc) {
		if !r.Changes[i].Deleted && r.Changes[i].Value != "" {
			r.Changes[i].Value = l.new
		}
	}
	out.Rollout = &r
	return &out
}

// idArg is the optional ID argument of promote, abort, pause and resume:
// the rollout of the prefix when none is given.
func idArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}

// rolloutID returns id, or the id of the prefix's rollout when id is "".
func rolloutID(ctx context.Context, s *session, id string) (string, error) {
	if id != "" {
		return id, nil
	}
	r, err := rollout.Get(ctx, s.cli, s.layout.Prefix())
	if errors.Is(err, rollout.ErrNoRollout) {
		return "", &reworded{err: err, msg: fmt.Sprintf("no rollout under %s (strata rollout start starts one)", s.layout.Prefix())}
	}
	if err != nil {
		return "", err
	}
	return r.ID, nil
}

// noSchema reports whether no schema is published for the prefix of s, so
// that a rollout's writes are not validated (see warnUnchecked).
func noSchema(ctx context.Context, s *session) (bool, error) {
	_, err := s.writer(nil, false).Schema(ctx)
	if errors.Is(err, config.ErrNotFound) {
		return true, nil
	}
	return false, err
}

// rolloutAct connects and runs fn on the rollout named by args.
func (a *app) rolloutAct(ctx context.Context, args []string, fn func(ctx context.Context, s *session, id string) error) error {
	ctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(ctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	id, err := rolloutID(ctx, s, idArg(args))
	if err != nil {
		return err
	}
	return fn(ctx, s, id)
}

func (a *app) rolloutPromoteCommand() *cobra.Command {
	var author, message string
	cmd := &cobra.Command{
		Use:   "promote [ID]",
		Short: "Promote the rollout now: write its change as one release for every instance",
		Long: `Promote the rollout (ID, by default the prefix's rollout) without waiting for
its remaining steps: its change is written as one release, checked against
the schema and against the version the rollout started from, naming the
rollout. Every instance then runs the candidate. A rollout that was already
promoted or aborted cannot be promoted (exit 1).`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rolloutAct(cmd.Context(), args, func(ctx context.Context, s *session, id string) error {
				var opts []config.WriteOption
				if author != "" {
					opts = append(opts, config.Author(author))
				}
				if message != "" {
					opts = append(opts, config.Message(message))
				}
				var wopts []config.RawWriterOption
				if s.ring != nil {
					wopts = append(wopts, config.WithWriterKeyring(s.ring)) // the candidate's secrets validated in clear
				}
				unchecked, err := noSchema(ctx, s)
				if err != nil {
					return err
				}
				rel, err := rollout.PromoteWith(ctx, s.cli, s.layout.Prefix(), id, wopts, opts...)
				if err != nil {
					return err
				}
				if unchecked {
					a.warnUnchecked(s.layout.Schema())
				}
				printDiff(a.stdout, keyChanges(rel.Changes), colour(a.stdout))
				fmt.Fprintf(a.stdout, "promoted rollout %s as version %d: %s\n", showText(id), rel.Version, plural(len(rel.Changes), "change"))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&author, "author", "", "the release's author (default: the rollout's)")
	cmd.Flags().StringVarP(&message, "message", "m", "", "the release's message (default: the rollout's, naming it)")
	return cmd
}

func (a *app) rolloutAbortCommand() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "abort [ID]",
		Short: "Abort the rollout: every canary goes back to the base content",
		Long: `Abort the rollout (ID, by default the prefix's rollout): the canaries revert to
the base content in one change; nothing is written to P/data. The reason is
recorded and shown by status. A rollout that was already promoted or aborted
cannot be aborted (exit 1).`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rolloutAct(cmd.Context(), args, func(ctx context.Context, s *session, id string) error {
				why := reason
				if why == "" {
					why = "aborted by " + osUser()
				}
				r, err := rollout.Abort(ctx, s.cli, s.layout.Prefix(), id, why)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "aborted rollout %s at step %d of %d: the canaries go back to version %d (reason: %s)\n",
					showText(r.ID), r.Step+1, len(r.Steps), r.Base, showText(r.Reason))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the rollout is aborted (default: \"aborted by\" the OS user)")
	return cmd
}

func (a *app) rolloutPauseCommand() *cobra.Command {
	var author string
	cmd := &cobra.Command{
		Use:   "pause [ID]",
		Short: "Pause the rollout: it stays at its step, its bake clock stops",
		Long: `Pause the rollout (ID, by default the prefix's rollout): the controller does
not advance, promote or abort it on its own until it is resumed; the canaries
keep the candidate. Plain writes stay refused while it is paused.`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rolloutAct(cmd.Context(), args, func(ctx context.Context, s *session, id string) error {
				by := author
				if by == "" {
					by = osUser()
				}
				r, err := rollout.Pause(ctx, s.cli, s.layout.Prefix(), id, by)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "paused rollout %s at step %d of %d (%d%%)\n", showText(r.ID), r.Step+1, len(r.Steps), r.Steps[r.Step])
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&author, "author", "", "who pauses it (default: the OS user)")
	return cmd
}

func (a *app) rolloutResumeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "resume [ID]",
		Short: "Resume a paused rollout: its step's bake goes on where it stopped",
		Args:  maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rolloutAct(cmd.Context(), args, func(ctx context.Context, s *session, id string) error {
				r, err := rollout.Resume(ctx, s.cli, s.layout.Prefix(), id)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "resumed rollout %s at step %d of %d (%d%%)\n", showText(r.ID), r.Step+1, len(r.Steps), r.Steps[r.Step])
				return nil
			})
		},
	}
}

func (a *app) rolloutRunCommand() *cobra.Command {
	var name string
	var ttl int
	var poll time.Duration
	var vanished int
	var degraded bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the rollout controller in the foreground until interrupted",
		Long: `Run a rollout controller for the prefix until interrupted (SIGINT, SIGTERM;
it then exits 0). Controllers are elected through etcd: one acts, the others
stand by and one of them takes over within --session-ttl when it stops,
continuing from the state stored in etcd. The acting controller advances the
steps after their bake time, promotes after the last one, and aborts when a
canary rejects the candidate, turns degraded or disappears. It logs what it
does on stderr.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ttl < 1 {
				return usagef("--session-ttl must be at least 1 (seconds), not %d", ttl)
			}
			if poll <= 0 {
				return usagef("--poll-interval must be positive, not %v", poll)
			}
			return a.rolloutRun(cmd.Context(), name, ttl, poll, vanished, degraded)
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "this controller's name in the election and the logs (default: host-pid)")
	cmd.Flags().IntVar(&ttl, "session-ttl", rollout.DefaultSessionTTL, "the election session's TTL in seconds: a standby takes over within it")
	cmd.Flags().DurationVar(&poll, "poll-interval", rollout.DefaultPollInterval, "how often the leader reads the rollout and the instance records")
	cmd.Flags().IntVar(&vanished, "vanished-limit", rollout.DefaultVanishedLimit,
		"abort when more canaries than this vanish during a step (their instance records gone; -1: never)")
	cmd.Flags().BoolVar(&degraded, "abort-on-degraded", true, "abort when a canary on the candidate reports its health degraded")
	return cmd
}

func (a *app) rolloutRun(ctx context.Context, name string, ttl int, poll time.Duration, vanished int, degraded bool) error {
	rctx, cancel := a.withTimeout(ctx)
	s, err := a.connect(rctx, true)
	cancel()
	if err != nil {
		return err
	}
	defer s.close()
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: a.stderr}, nil))
	fmt.Fprintf(a.stderr, "strata: rollout controller for %s (interrupt to stop)\n", s.layout.Prefix())
	rctx, cancel = a.withTimeout(ctx)
	unchecked, err := noSchema(rctx, s)
	cancel()
	if err != nil {
		return err
	}
	if unchecked {
		fmt.Fprintf(a.stderr, "strata: warning: no schema is published at %s: the rollouts this controller promotes are not validated\n", s.layout.Schema())
	}
	ropts := []rollout.Option{rollout.WithName(name), rollout.WithSessionTTL(ttl),
		rollout.WithPollInterval(poll), rollout.WithVanishedLimit(vanished), rollout.WithAbortOnDegraded(degraded), rollout.WithLogger(log)}
	if s.ring != nil {
		ropts = append(ropts, rollout.WithWriterOptions(config.WithWriterKeyring(s.ring))) // promotions validate secrets in clear
	}
	err = rollout.Run(ctx, s.cli, s.layout.Prefix(), ropts...)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		return nil // interrupted: the normal end
	}
	return err
}
