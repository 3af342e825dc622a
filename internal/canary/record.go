// Package canary holds what the writer, the running Configs and the rollout
// controller share about a progressive rollout: the record stored at
// P/meta/rollout, its label selector, and the rule by which an instance
// decides for itself that it is a canary. Package config/rollout is its
// public face.
package canary

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"
)

// State is the state of a rollout.
type State string

// The states of a rollout. Running and Paused are active: the writer
// refuses plain writes to the prefix. Promoted and Aborted are final.
const (
	Running  State = "running"
	Paused   State = "paused"
	Promoted State = "promoted"
	Aborted  State = "aborted"
)

// Active reports whether a rollout in state s holds the prefix.
func (s State) Active() bool { return s == Running || s == Paused }

// Change is one data key the candidate sets or deletes.
type Change struct {
	Key     string `json:"key"` // relative to P/data/ ("db/port")
	Value   string `json:"value,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
}

// Record is a rollout as stored at P/meta/rollout. It is written only by
// compare-and-swap on the key's mod revision.
type Record struct {
	ID string `json:"id"`
	// Base is the release version the candidate was made from; promotion
	// is a release that expects it.
	Base int64 `json:"base"`
	// Changes are the data keys the candidate sets and deletes, sorted
	// by key.
	Changes []Change `json:"changes"`
	// Steps are the canary percentages, strictly increasing, the last one
	// 100; Bake is how long each step runs before the next.
	Steps    []int    `json:"steps"`
	Bake     Duration `json:"bake"`
	Selector string   `json:"selector,omitempty"`
	Author   string   `json:"author,omitempty"`
	Message  string   `json:"message,omitempty"`
	State    State    `json:"state"`
	// Reason says why the rollout was aborted, or who paused it.
	Reason string `json:"reason,omitempty"`
	// Step indexes Steps: the step running (or paused, or last run).
	Step int `json:"step"`
	// StepStarted is when the current step began; a paused rollout's
	// bake clock stops and Baked keeps what it had run.
	StepStarted time.Time `json:"step_started"`
	Baked       Duration  `json:"baked,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// Release is the version of the promotion release.
	Release int64 `json:"release,omitempty"`
}

// Percent returns the share of matching instances that are canaries at the
// current step, 0 for a rollout that is not active.
func (r *Record) Percent() int {
	if !r.State.Active() || r.Step < 0 || r.Step >= len(r.Steps) {
		return 0
	}
	return r.Steps[r.Step]
}

// Decode reads a record, checking what instances rely on.
func Decode(b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("rollout record: %w", err)
	}
	if r.ID == "" {
		return nil, errors.New("rollout record: no id")
	}
	if err := CheckSteps(r.Steps); err != nil {
		return nil, fmt.Errorf("rollout record %s: %w", r.ID, err)
	}
	if _, err := ParseSelector(r.Selector); err != nil {
		return nil, fmt.Errorf("rollout record %s: %w", r.ID, err)
	}
	return &r, nil
}

// Encode writes a record.
func (r *Record) Encode() string {
	b, _ := json.Marshal(r) // a Record holds nothing that fails to encode
	return string(b)
}

// CheckSteps reports whether steps are percentages from 1 to 100, strictly
// increasing, ending with 100.
func CheckSteps(steps []int) error {
	if len(steps) == 0 {
		return errors.New("no steps")
	}
	for i, s := range steps {
		if s < 1 || s > 100 || (i > 0 && s <= steps[i-1]) {
			return fmt.Errorf("steps %v: each a percentage from 1 to 100, strictly increasing", steps)
		}
	}
	if steps[len(steps)-1] != 100 {
		return fmt.Errorf("steps %v: the last step must be 100", steps)
	}
	return nil
}

// Bucket places an instance in [0, 100) for a rollout: a stable hash of
// both ids, so that each rollout picks its own canaries, evenly.
func Bucket(instanceID, rolloutID string) int {
	h := fnv.New64a()
	h.Write([]byte(rolloutID))
	h.Write([]byte{0})
	h.Write([]byte(instanceID))
	return int(h.Sum64() % 100)
}

// In reports whether an instance with this id and these labels is a canary
// of r at r's current step: r is active, the labels match its selector and
// the instance's bucket falls under the step's percentage. Membership only
// grows from step to step. An instance without an id is never a canary.
func In(r *Record, instanceID string, labels map[string]string) bool {
	if r == nil || instanceID == "" || !r.State.Active() {
		return false
	}
	sel, err := ParseSelector(r.Selector)
	if err != nil || !sel.Matches(labels) {
		return false
	}
	return Bucket(instanceID, r.ID) < r.Percent()
}

// Duration is a time.Duration stored as text ("30s").
type Duration time.Duration

// MarshalJSON writes d as "30s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads "30s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
