package rollout

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/internal/canary"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// Rollout is a rollout as stored at P/meta/rollout (see the fields of
// canary.Record): its id, base version, candidate changes, steps, bake
// time, selector, author, message, state and progress.
type Rollout = canary.Record

// State is the state of a rollout: Running, Paused, Promoted or Aborted.
// State.Active reports whether it holds the prefix (running or paused).
type State = canary.State

// Change is one data key a rollout's candidate sets or deletes; Key is
// relative to P/data/ ("db/port").
type Change = canary.Change

// Duration is a time.Duration that a Rollout stores as text ("30s").
type Duration = canary.Duration

// The states of a rollout. Running and Paused hold the prefix; Promoted
// and Aborted are final.
const (
	Running  = canary.Running
	Paused   = canary.Paused
	Promoted = canary.Promoted
	Aborted  = canary.Aborted
)

var (
	// ErrNoRollout is the error of an operation on a prefix that holds no
	// rollout, or whose rollout is not the one named.
	ErrNoRollout = errors.New("no such rollout")
	// ErrState is the error of an operation the rollout's state does not
	// allow (pausing a paused rollout, aborting a promoted one, ...).
	ErrState = errors.New("the rollout's state does not allow it")
	// ErrNoChange is the error of a rollout whose candidate changes
	// nothing.
	ErrNoChange = errors.New("the candidate changes nothing")
)

// DefaultBake is the bake time of each step when Spec.Bake is zero.
const DefaultBake = 5 * time.Minute

// DefaultSteps returns the steps used when Spec.Steps is empty: 5%, 25%,
// then everyone.
func DefaultSteps() []int { return []int{5, 25, 100} }

// maxAttempts bounds how often a compare-and-swap on the record is re-run
// after losing a race to another writer of the record.
const maxAttempts = 16

// Spec describes a rollout to start.
type Spec struct {
	// Set maps dotted config paths ("db.port") to value text, as
	// RawWriter.Set writes them.
	Set map[string]string
	// Delete lists config paths whose leaf key, and every leaf key
	// beneath it, the candidate deletes (as RawWriter.Delete). Deletes
	// apply before Set, so deleting "db" and setting "db.port" replaces
	// the subtree.
	Delete []string
	// Steps are the canary percentages, strictly increasing, ending with
	// 100 (default DefaultSteps).
	Steps []int
	// Bake is how long each step runs before the next (default
	// DefaultBake).
	Bake time.Duration
	// Selector limits the canaries to instances whose labels match
	// ("zone=eu-1,tier!=batch"); empty: every instance with an id.
	Selector string
	// Author and Message describe the rollout; the promotion release
	// carries them.
	Author, Message string
	// ID names the rollout; empty means a new one,
	// "ro-<base>-<6 random hex digits>". Give the ID a Plan returned to
	// start the rollout whose canaries the plan showed (which instances
	// are canaries depends on the id); it must name the current version
	// as its base.
	ID string
}

// idPattern is the form of rollout ids: ro-<base>-<suffix>.
var idPattern = regexp.MustCompile(`^ro-([0-9]+)-([0-9a-z]{1,32})$`)

// newID returns a fresh rollout id for base.
func newID(base int64) string {
	var b [3]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read does not fail
	return fmt.Sprintf("ro-%d-%s", base, hex.EncodeToString(b[:]))
}

// Start creates a rollout of spec under prefix: it checks the spec,
// computes the candidate by a dry run of the writer (validated like any
// write, against the published schema unless opts say otherwise), and
// creates the record, running at step 0, by a transaction guarded by the
// rollout key (absent, or holding a promoted or aborted rollout) and by the
// version key (the base the candidate was made from). A running or paused
// rollout is refused with a *config.RolloutActiveError naming it; a
// candidate that changes nothing with ErrNoChange.
func Start(ctx context.Context, cli *clientv3.Client, prefix string, spec Spec, opts ...config.RawWriterOption) (*Rollout, error) {
	for attempt := 1; ; attempt++ {
		p, err := plan(ctx, cli, prefix, spec, opts)
		if err != nil {
			if spec.ID == "" && attempt < maxAttempts && errors.Is(err, config.ErrConflict) {
				continue // a release landed while the candidate was made
			}
			return nil, err
		}
		l := etcdprov.NewLayout(prefix)
		tctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
		resp, err := cli.Txn(tctx).If(
			clientv3.Compare(clientv3.ModRevision(l.Rollout()), "=", p.rolloutRev),
			clientv3.Compare(clientv3.ModRevision(l.Version()), "=", p.versionRev),
		).Then(clientv3.OpPut(l.Rollout(), p.rec.Encode())).Else(
			clientv3.OpGet(l.Rollout()), clientv3.OpGet(l.Version()),
		).Commit()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("rollout: start: %w", etcdprov.Wrap("create "+l.Rollout(), cli.Endpoints(), err))
		}
		if resp.Succeeded {
			return p.rec, nil
		}
		// Lost a race: to another rollout (refused on the next read), or
		// to a release (the candidate is made again from the new base).
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			if r, err := canary.Decode(kvs[0].Value); err == nil && r.State.Active() {
				return nil, fmt.Errorf("rollout: start: %w", &config.RolloutActiveError{ID: r.ID, State: string(r.State)})
			}
		}
		cur := p.rec.Base
		if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
			cur, _ = strconv.ParseInt(string(kvs[0].Value), 10, 64)
		}
		if spec.ID != "" || attempt >= maxAttempts {
			return nil, fmt.Errorf("rollout: start: %w", &config.ConflictError{Expected: p.rec.Base, Current: cur})
		}
	}
}

// Plan checks spec and computes its candidate exactly as Start does, and
// returns the record Start would write, without writing anything. Pass its
// ID in Spec.ID to Start the same rollout, and use Members to list the
// instances that would be canaries at each step.
func Plan(ctx context.Context, cli *clientv3.Client, prefix string, spec Spec, opts ...config.RawWriterOption) (*Rollout, error) {
	p, err := plan(ctx, cli, prefix, spec, opts)
	if err != nil {
		return nil, err
	}
	return p.rec, nil
}

// planned is a rollout record ready to be created, with the mod revisions
// its creation is guarded by.
type planned struct {
	rec        *Rollout
	versionRev int64 // mod revision of P/meta/version; 0: absent
	rolloutRev int64 // mod revision of P/meta/rollout; 0: absent
}

// plan checks spec, reads the rollout and version keys, and makes the
// candidate by a dry run of the writer.
func plan(ctx context.Context, cli *clientv3.Client, prefix string, spec Spec, opts []config.RawWriterOption) (*planned, error) {
	steps, bake, err := checkSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	w, err := config.NewRawWriter(cli, prefix, opts...)
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	defer w.Close()
	l := etcdprov.NewLayout(prefix)
	tctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	resp, err := cli.Txn(tctx).Then(clientv3.OpGet(l.Rollout()), clientv3.OpGet(l.Version())).Commit()
	cancel()
	if err != nil {
		return nil, fmt.Errorf("rollout: %w", etcdprov.Wrap("read "+l.Rollout(), cli.Endpoints(), err))
	}
	p := &planned{}
	var prev *Rollout
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		p.rolloutRev = kvs[0].ModRevision
		if prev, err = canary.Decode(kvs[0].Value); err != nil {
			return nil, fmt.Errorf("rollout: %s: %w (delete the key to start a rollout)", l.Rollout(), err)
		}
		if prev.State.Active() {
			return nil, fmt.Errorf("rollout: start: %w", &config.RolloutActiveError{ID: prev.ID, State: string(prev.State)})
		}
	}
	var version int64
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) > 0 {
		if version, err = strconv.ParseInt(string(kvs[0].Value), 10, 64); err != nil {
			return nil, fmt.Errorf("rollout: guard key %s holds %q, not a version number", l.Version(), kvs[0].Value)
		}
		p.versionRev = kvs[0].ModRevision
	}

	var base, cand config.Content
	rel, err := w.Modify(ctx, func(c config.Content) error {
		base = maps.Clone(c)
		if err := applySpec(c, spec); err != nil {
			return err
		}
		cand = maps.Clone(c)
		return nil
	}, config.DryRun(), config.Author(spec.Author), config.Message(spec.Message))
	if err != nil {
		return nil, fmt.Errorf("rollout: candidate: %w", err)
	}
	if rel.Version-1 != version {
		// A release landed between the two reads: the candidate may not
		// be made from the version the record would name.
		return nil, fmt.Errorf("rollout: candidate: %w", &config.ConflictError{Expected: version, Current: rel.Version - 1})
	}
	changes := diff(base, cand)
	if len(changes) == 0 {
		return nil, fmt.Errorf("rollout: %w: every key already holds its value", ErrNoChange)
	}
	for i, ch := range changes {
		// Secret values are kept sealed in the record, as in data keys.
		if !ch.Deleted {
			if changes[i].Value, err = w.Seal(ctx, ch.Key, ch.Value); err != nil {
				return nil, fmt.Errorf("rollout: %w", err)
			}
		}
	}
	id := spec.ID
	if id == "" {
		id = newID(version)
	} else if m := idPattern.FindStringSubmatch(id); m == nil {
		return nil, fmt.Errorf("rollout: id %q is not of the form ro-<base>-<suffix> (lower-case letters and digits)", id)
	} else if m[1] != strconv.FormatInt(version, 10) {
		return nil, fmt.Errorf("rollout: id %s names base %s, but the current version is %d: %w", id, m[1], version,
			&config.ConflictError{Expected: mustAtoi(m[1]), Current: version})
	}
	if prev != nil && prev.ID == id {
		return nil, fmt.Errorf("rollout: id %s was the previous rollout's (%s); a rollout id is used once", id, prev.State)
	}
	now := time.Now().UTC()
	p.rec = &Rollout{ID: id, Base: version, Changes: changes, Steps: steps, Bake: Duration(bake),
		Selector: spec.Selector, Author: spec.Author, Message: spec.Message, State: Running,
		Step: 0, StepStarted: now, Created: now, Updated: now}
	return p, nil
}

// mustAtoi reads the digits of a rollout id's base (idPattern checked
// them; an overflow reads as -1).
func mustAtoi(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// checkSpec checks the parts of spec that need no etcd and returns the
// steps and bake time with their defaults.
func checkSpec(spec Spec) ([]int, time.Duration, error) {
	steps := slices.Clone(spec.Steps)
	if len(steps) == 0 {
		steps = DefaultSteps()
	}
	if err := canary.CheckSteps(steps); err != nil {
		return nil, 0, err
	}
	bake := spec.Bake
	switch {
	case bake == 0:
		bake = DefaultBake
	case bake < 0:
		return nil, 0, fmt.Errorf("bake time %s: must be positive", bake)
	}
	if _, err := canary.ParseSelector(spec.Selector); err != nil {
		return nil, 0, err
	}
	if len(spec.Set) == 0 && len(spec.Delete) == 0 {
		return nil, 0, fmt.Errorf("%w: the spec sets and deletes no path", ErrNoChange)
	}
	for _, p := range spec.Delete {
		if _, ok := spec.Set[p]; ok {
			return nil, 0, fmt.Errorf("path %s is both set and deleted", p)
		}
	}
	return steps, bake, nil
}

// applySpec applies the deletes, then the sets, of spec to content c, with
// the rules of RawWriter.Delete and RawWriter.Set, and refuses a path that
// lies inside a document key (or holds one beneath it): the candidate would
// then be split between a leaf and a document.
func applySpec(c config.Content, spec Spec) error {
	for _, p := range spec.Delete {
		key, err := etcdprov.LeafRel(p)
		if err != nil {
			return fmt.Errorf("delete: %w", err)
		}
		n := 0
		for k := range c {
			if k == key || strings.HasPrefix(k, key+"/") {
				delete(c, k)
				n++
			}
		}
		if n == 0 {
			return fmt.Errorf("delete %s: no leaf key at %s or beneath it: %w", p, key, config.ErrNotFound)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(spec.Set)) {
		value := spec.Set[p]
		key, err := etcdprov.LeafRel(p)
		if err != nil {
			return fmt.Errorf("set: %w", err)
		}
		if value == config.Mask {
			return fmt.Errorf("set %s: %s is how a secret is shown, not a value: %w", p, config.Mask, config.ErrInvalid)
		}
		if doc := documentAt(c, key); doc != "" {
			return fmt.Errorf("set %s: the path lies inside the document key %s (or the document lies beneath it); a rollout changes leaf keys only: change the document with a plain write, or delete it first: %w",
				p, doc, config.ErrInvalid)
		}
		if shadow := c.Shadowing(key); len(shadow) > 0 {
			return fmt.Errorf("set %s: a leaf at %s and the leaf key(s) %s cannot both be held: one would hide the other; delete %s in the same rollout: %w",
				p, key, strings.Join(shadow, ", "), strings.Join(shadow, ", "), config.ErrInvalid)
		}
		c[key] = value
	}
	return nil
}

// documentAt returns a document key of c that holds the path of leaf key
// key, or lies beneath it; "" if there is none.
func documentAt(c config.Content, key string) string {
	for _, k := range slices.Sorted(maps.Keys(c)) {
		ext := path.Ext(k)
		if ext == "" {
			continue
		}
		at := strings.TrimSuffix(k, ext) // "db" for db.yaml, "" for .yaml at the root
		if at == "" || at == key || strings.HasPrefix(key, at+"/") || strings.HasPrefix(at, key+"/") {
			return k
		}
	}
	return ""
}

// diff lists the keys that differ from base to cand, sorted, with the raw
// values of cand (Release.Changes masks secrets; the record must not).
func diff(base, cand config.Content) []Change {
	var out []Change
	for k, v := range cand {
		if old, ok := base[k]; !ok || old != v {
			out = append(out, Change{Key: k, Value: v})
		}
	}
	for k := range base {
		if _, ok := cand[k]; !ok {
			out = append(out, Change{Key: k, Deleted: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Get returns the rollout of prefix, running or ended, or an error
// wrapping ErrNoRollout when there is none.
func Get(ctx context.Context, cli *clientv3.Client, prefix string) (*Rollout, error) {
	r, _, err := read(ctx, cli, etcdprov.NewLayout(prefix))
	return r, err
}

// read returns the rollout record of l and its mod revision.
func read(ctx context.Context, cli *clientv3.Client, l etcdprov.Layout) (*Rollout, int64, error) {
	if cli == nil {
		return nil, 0, errors.New("rollout: no etcd client")
	}
	if err := etcdprov.CheckPrefix(l.Prefix()); err != nil {
		return nil, 0, fmt.Errorf("rollout: %w", err)
	}
	tctx, cancel := context.WithTimeout(ctx, etcdprov.DefaultRequestTimeout)
	defer cancel()
	resp, err := cli.Get(tctx, l.Rollout())
	if err != nil {
		return nil, 0, fmt.Errorf("rollout: %w", etcdprov.Wrap("read "+l.Rollout(), cli.Endpoints(), err))
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, fmt.Errorf("rollout: %s: %w", l.Prefix(), ErrNoRollout)
	}
	r, err := canary.Decode(resp.Kvs[0].Value)
	if err != nil {
		return nil, 0, fmt.Errorf("rollout: %s: %w", l.Rollout(), err)
	}
	return r, resp.Kvs[0].ModRevision, nil
}

// Members returns the instances that are canaries of r at step (an index
// into r.Steps), whatever r's state: those whose labels match r's
// selector and whose bucket falls under the step's percentage. Membership
// only grows from step to step.
func Members(r *Rollout, instances []config.Instance, step int) []config.Instance {
	if r == nil || step < 0 || step >= len(r.Steps) {
		return nil
	}
	at := *r
	at.Step, at.State = step, Running
	var out []config.Instance
	for _, in := range instances {
		if canary.In(&at, in.ID, in.Labels) {
			out = append(out, in)
		}
	}
	return out
}

// BakeLeft returns how much of the current step's bake time is left at
// now: the bake time less what the step has run. A running step has run
// Baked plus the time since StepStarted (Resume sets StepStarted so that
// Baked is zero while running); a paused one has run Baked. It is zero
// once the bake is over, and for a rollout that is not active.
func BakeLeft(r *Rollout, now time.Time) time.Duration {
	if r == nil || !r.State.Active() {
		return 0
	}
	return max(time.Duration(r.Bake)-elapsed(r, now), 0)
}

// elapsed returns how long r's current step has baked at now.
func elapsed(r *Rollout, now time.Time) time.Duration {
	ran := time.Duration(r.Baked)
	if r.State == Running {
		ran += now.Sub(r.StepStarted)
	}
	return ran
}
