//go:build faultsuite && linux

package faultsuite

import "syscall"

// procAttr puts an etcd process in its own process group and has the kernel
// kill it if the test binary dies first (a panic or a -timeout), so that no
// member outlives the suite.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
