package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	etcdprov "github.com/strataconf/strata/providers/etcd"
)

func isAuth(err error) bool { return etcdprov.ErrorIsAuth(err) }

// hub runs one etcd watch per prefix, shared by every browser that
// follows it, while at least one does. An event carries only the revision
// of the change: never a key or a value.
type hub struct {
	log *slog.Logger

	mu      sync.Mutex
	watches map[string]*watch
	closed  bool
}

// event is what a browser is told: the kind of change ("change" for the
// configuration, its releases, schema or rollout; "instances" for
// instance records) and its revision.
type event struct {
	Kind string
	Rev  int64
}

type watch struct {
	cancel context.CancelFunc
	subs   map[chan event]struct{}
	done   chan struct{}
}

func newHub(log *slog.Logger) *hub { return &hub{log: log, watches: map[string]*watch{}} }

// subscribe follows prefix; the watch is started with cli when none runs.
// The channel is closed when the watch ends (the browser reconnects).
func (h *hub) subscribe(cli *clientv3.Client, prefix string) (chan event, func()) {
	ch := make(chan event, 8)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	wt := h.watches[prefix]
	if wt == nil {
		ctx, cancel := context.WithCancel(context.Background())
		wt = &watch{cancel: cancel, subs: map[chan event]struct{}{}, done: make(chan struct{})}
		h.watches[prefix] = wt
		go h.run(ctx, cli, prefix, wt)
	}
	wt.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := wt.subs[ch]; !ok {
			return
		}
		delete(wt.subs, ch)
		close(ch)
		if len(wt.subs) == 0 && h.watches[prefix] == wt {
			delete(h.watches, prefix)
			wt.cancel()
		}
	}
}

func (h *hub) run(ctx context.Context, cli *clientv3.Client, prefix string, wt *watch) {
	defer close(wt.done)
	l := etcdprov.NewLayout(prefix)
	wch := cli.Watch(clientv3.WithRequireLeader(ctx), l.Prefix()+"/", clientv3.WithPrefix(), clientv3.WithFilterDelete(), clientv3.WithPrevKV())
	var lastInstances time.Time
	for resp := range wch {
		if err := resp.Err(); err != nil {
			h.log.Info("console: watch ended", "prefix", prefix, "err", err)
			break
		}
		var ev event
		for _, e := range resp.Events {
			key := string(e.Kv.Key)
			if _, ok := l.ParseInstance(key); ok {
				if ev.Kind == "" {
					ev.Kind = "instances"
				}
			} else if strings.HasPrefix(key, l.Meta()+"election/") || strings.HasPrefix(key, l.Meta()+"writes/") {
				continue
			} else {
				ev.Kind = "change"
			}
			ev.Rev = max(ev.Rev, e.Kv.ModRevision)
		}
		if ev.Kind == "" {
			continue
		}
		if ev.Kind == "instances" {
			// Heartbeats: at most one event a second.
			if time.Since(lastInstances) < time.Second {
				continue
			}
			lastInstances = time.Now()
		}
		h.mu.Lock()
		for ch := range wt.subs {
			select {
			case ch <- ev:
			default: // a slow browser: it reloads on the events it has
			}
		}
		h.mu.Unlock()
	}
	// The watch ended: close the subscribers so browsers reconnect (and a
	// new watch starts).
	h.mu.Lock()
	for ch := range wt.subs {
		delete(wt.subs, ch)
		close(ch)
	}
	if h.watches[prefix] == wt {
		delete(h.watches, prefix)
	}
	h.mu.Unlock()
}

func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	ws := h.watches
	h.watches = map[string]*watch{}
	h.mu.Unlock()
	for _, wt := range ws {
		wt.cancel()
		<-wt.done
	}
}

// events streams server-sent events: "change" with the revision whenever
// the prefix changes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	prefix, ok := s.prefixOf(r)
	if !ok {
		http.Error(w, "404 unknown prefix", http.StatusNotFound)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	// Check that the user may read the prefix before following it.
	ctx, cancel := s.ctx(r)
	_, _, rev, err := s.writer(r, prefix).Read(ctx)
	cancel()
	if err != nil {
		status := http.StatusBadGateway
		if isAuth(err) {
			status = http.StatusForbidden
		}
		http.Error(w, err.Error(), status)
		return
	}
	ch, unsubscribe := s.hub.subscribe(s.client(r), prefix)
	defer unsubscribe()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 3000\nevent: hello\ndata: %d\n\n", rev)
	fl.Flush()
	keepalive := time.NewTicker(25 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			fmt.Fprintf(w, "event: %s\ndata: %d\n\n", ev.Kind, ev.Rev)
			fl.Flush()
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			fl.Flush()
		}
	}
}
