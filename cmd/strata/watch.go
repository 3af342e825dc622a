package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/strataconf/strata/cmd/strata/internal/tree"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

func (a *app) watchCommand() *cobra.Command {
	var schemaFile string
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print every change of the configuration until interrupted",
		Long: `Follow the configuration and print, for every etcd revision that changes it,
one line per changed path: "revision R + path: value" (added),
"revision R ~ path: old → new" (changed) or "revision R - path: old"
(deleted). Secret values are masked. Each line is flushed at once, so scripts
can read them. A notice on stderr gives the revision the watch starts after,
and one line on stderr says when the connection to etcd is lost and one when
it is back (the changes made meanwhile are then printed). It runs until
interrupted (SIGINT, SIGTERM) and then exits 0.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.watch(cmd.Context(), schemaFile)
		},
	}
	cmd.Flags().StringVar(&schemaFile, "schema", "", "mask by this JSON Schema file instead of the one published at P/meta/schema")
	return cmd
}

func (a *app) watch(ctx context.Context, schemaFile string) error {
	rctx, cancel := a.withTimeout(ctx)
	defer cancel()
	s, err := a.connect(rctx, true)
	if err != nil {
		return err
	}
	defer s.close()
	si, err := loadSchema(rctx, s.writer(nil, false), schemaFile, s.layout.Schema())
	if err != nil {
		return err
	}
	p := etcdprov.New(s.cli, s.layout.Prefix(), etcdprov.WithRequestTimeout(a.requestTimeout()))
	d, err := p.Read(rctx)
	if err != nil {
		return err
	}
	prev, err := dataTexts(s.layout, d)
	if err != nil {
		return err
	}
	stderr := &lockedWriter{w: a.stderr}
	fmt.Fprintf(stderr, "strata: watching %s after revision %d (interrupt to stop)\n", s.layout.Data(), d.Revision)
	mctx, stopReport := context.WithCancel(ctx)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		reportConnection(mctx, s.cli, stderr)
	}()
	defer func() { stopReport(); <-reported }()
	col := colour(a.stdout)
	err = p.Watch(ctx, d, func(u etcdprov.Update) {
		d = d.Apply(u)
		next, err := dataTexts(s.layout, d)
		if err != nil {
			printError(stderr, fmt.Errorf("revision %d: %w", u.Revision, err)) // keys escaped
			return
		}
		if u.Resync != nil {
			fmt.Fprintf(stderr, "strata: revision %d: history compacted, re-read the prefix\n", u.Revision)
		}
		for _, c := range tree.Diff(prev, next, si.secrets) {
			fmt.Fprintf(a.stdout, "revision %d ", u.Revision)
			printDiff(a.stdout, []diffLine{{kind: c.Kind, path: c.Path, old: c.Old, new: c.New}}, col)
			flush(a.stdout)
		}
		prev = next
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // interrupted: the normal end
	}
	return err
}

// reportConnection writes a line to w when the client's connection to etcd
// is lost (no endpoint usable: gRPC's TRANSIENT_FAILURE) and one when it is
// back (READY), until ctx is done. clientv3 retries a broken watch by
// itself, so without this a watch on a stopped cluster would be silent.
func reportConnection(ctx context.Context, cli *clientv3.Client, w io.Writer) {
	conn := cli.ActiveConnection()
	if conn == nil {
		return
	}
	eps := strings.Join(cli.Endpoints(), ",")
	lost := false
	for {
		st := conn.GetState()
		switch {
		case !lost && st == connectivity.TransientFailure:
			lost = true
			fmt.Fprintf(w, "strata: connection to etcd [%s] lost; retrying (the changes made meanwhile are printed when it is back)\n", eps)
		case lost && st == connectivity.Ready:
			lost = false
			fmt.Fprintf(w, "strata: connection to etcd [%s] is back\n", eps)
		}
		if !conn.WaitForStateChange(ctx, st) {
			return // ctx is done
		}
	}
}

// lockedWriter serialises the writes of several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// dataTexts is the leaf text of every path of d's tree.
func dataTexts(l etcdprov.Layout, d *etcdprov.Data) (map[string]string, error) {
	t, _, err := tree.FromData(l, d)
	if err != nil {
		return nil, err
	}
	return tree.Texts(t)
}

// flush pushes buffered output out, for writers that buffer.
func flush(w io.Writer) {
	// An *os.File does not buffer; a bufio.Writer or similar does.
	if f, ok := w.(interface{ Flush() error }); ok {
		f.Flush()
	}
}
