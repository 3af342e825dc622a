//go:build linux

package main

import (
	"fmt"
	"syscall"
)

// procAttr puts an etcd process in its own process group and has the
// kernel kill it if the bench dies first (a panic, a kill), so that no
// etcd outlives the run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// raiseNoFile makes sure the soft limit of open files is at least need,
// raising it up to the hard limit, and returns the limit in force. Go
// already raises the soft limit to the hard one for this process, but
// hands the original soft limit to its children; calling Setrlimit makes
// the etcd processes started afterwards inherit the raised limit too (each
// of them holds a connection per client).
func raiseNoFile(need uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit(RLIMIT_NOFILE): %w", err)
	}
	if lim.Max < need {
		return lim.Max, fmt.Errorf("the hard limit of open files is %d, below the %d this fleet needs: raise it (ulimit -Hn) or use a smaller -fleet", lim.Max, need)
	}
	lim.Cur = max(lim.Cur, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit(RLIMIT_NOFILE, %d): %w", lim.Cur, err)
	}
	return lim.Cur, nil
}
