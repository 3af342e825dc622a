//go:build faultsuite && !linux

package faultsuite

import "syscall"

// procAttr puts an etcd process in its own process group.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
