//go:build faultsuite

package faultsuite

import (
	"flag"
	"fmt"
	"testing"
)

var etcdBin = flag.String("etcd", "", "path of the etcd server binary (default $STRATA_ETCD_BIN; .ci/etcd-bin prints one)")

// TestFaultSuite runs every scenario on a fresh 3-member cluster of etcd
// processes and prints one summary line:
//
//	faultsuite: N writes acknowledged, F faults injected, V violations found
func TestFaultSuite(t *testing.T) {
	bin, _ := etcdBinary(t)

	var acked, faults, violations int
	for _, sc := range Scenarios() {
		t.Run(sc.Name, func(t *testing.T) {
			c := StartCluster(t, bin, 3)
			res := Run(t, c, sc)
			acked += res.Acked
			faults += res.Faults
			violations += res.Violations.n
			for _, line := range res.Violations.lines() {
				t.Errorf("violation: %s", line)
			}
			line := res.String()
			t.Log(line)
			fmt.Printf("%s\n", line)
		})
	}
	t.Run("rollout-kill-controller-member", func(t *testing.T) {
		c := StartCluster(t, bin, 3)
		res := RunRollout(t, c)
		faults += res.Faults
		violations += res.Violations.n
		for _, line := range res.Violations.lines() {
			t.Errorf("violation: %s", line)
		}
		line := fmt.Sprintf("faultsuite: %s: %d faults, %d violations, %.1fs", res.Name, res.Faults, res.Violations.n, res.Elapsed.Seconds())
		t.Log(line)
		fmt.Printf("%s\n", line)
	})
	line := fmt.Sprintf("faultsuite: %d writes acknowledged, %d faults injected, %d violations found", acked, faults, violations)
	t.Log(line)
	fmt.Printf("%s\n", line)
	if violations > 0 {
		t.Errorf("faultsuite: %d violations", violations)
	}
}
