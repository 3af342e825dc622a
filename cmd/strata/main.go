// Command strata is the admin CLI of Strata: it reads, checks and changes
// the configuration stored under one etcd prefix.
//
//	go install github.com/strataconf/strata/cmd/strata@latest
//	strata --endpoints 127.0.0.1:2379 --prefix /strata/app/prod get
//
// Run strata --help for the commands, flags and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(mainExit())
}

// mainExit runs the program on the process's arguments and streams; SIGINT
// and SIGTERM cancel its context.
func mainExit() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}
