// Package rollout rolls a change out to a prefix's running instances in
// steps, before it becomes a release.
//
// A rollout is a record at P/meta/rollout: the candidate change (the data
// keys it sets and deletes), the release version it starts from (its base),
// the steps (percentages of the matching instances, e.g. 5, 25, 100), the
// bake time of each step, an optional label selector, and its state. It is
// created by Start, and written only by compare-and-swap on the record's
// mod revision. While it is running or paused, plain writes to the prefix
// are refused with a *config.RolloutActiveError; a write with config.Force
// aborts it.
//
// Running Configs made with config.WithInstance decide for themselves
// whether they are canaries (their labels match the selector, and a stable
// hash of their id and the rollout's id falls under the step's percentage),
// apply the candidate over their etcd layer, and say in their instance
// record whether it was applied or rejected.
//
// Run is the controller: elected through etcd (concurrency.Election under
// the prefix), it advances the steps after their bake time, promotes the
// rollout at the end (Promote: one normal writer release, guarded by the
// base version), and aborts it when a canary rejects the candidate or is
// degraded on it, when canaries' instance records vanish, or when an
// application check fails.
// A standby takes over from the state stored in etcd when the leader's
// session ends. Pause, Resume, Abort and Promote are the operator's
// commands; Status reports where every instance stands.
package rollout
