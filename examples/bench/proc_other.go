//go:build !linux

package main

import "syscall"

// procAttr: elsewhere than Linux the etcd processes get no parent-death
// signal; the bench stops them on every exit path it controls.
func procAttr() *syscall.SysProcAttr { return nil }

// raiseNoFile does not check the limit of open files elsewhere than Linux;
// it returns 0 (unknown).
func raiseNoFile(need uint64) (uint64, error) { return 0, nil }
