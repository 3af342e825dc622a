package config

import (
	"testing"

	"github.com/strataconf/strata/internal/canary"
)

// TestPromotionKeepsTheCandidate: once a canary's rollout is promoted, the
// candidate stays laid over the etcd layer until that layer reaches the
// promotion's revision, whichever of the record and the data arrives first.
func TestPromotionKeepsTheCandidate(t *testing.T) {
	c := &Config[struct{}]{instanceID: "i1"}
	c.opts.instance = &instanceOptions{id: "i1"}
	running := &canary.Record{ID: "ro", Steps: []int{100}, State: canary.Running}
	c.canary.rec, c.canary.rev = running, 10
	if got := c.wantOverlay(5); got != running {
		t.Fatal("a canary at 100% carries no candidate")
	}
	c.canary.overlay = running
	promoted := *running
	promoted.State = canary.Promoted
	c.canary.rec, c.canary.rev = &promoted, 20
	if got := c.wantOverlay(19); got != running {
		t.Fatal("the record of the promotion arrived first and the candidate was dropped before the data")
	}
	if got := c.wantOverlay(20); got != nil {
		t.Fatal("the candidate outlived the promotion's data")
	}
	aborted := *running
	aborted.State = canary.Aborted
	c.canary.rec, c.canary.rev = &aborted, 20
	if got := c.wantOverlay(5); got != nil {
		t.Fatal("an aborted rollout's candidate stayed")
	}
	c.canary.overlay = nil
	c.canary.rec = &promoted
	if got := c.wantOverlay(5); got != nil {
		t.Fatal("an instance that was no canary took a promoted rollout's candidate")
	}
}
