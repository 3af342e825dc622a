package etcdtest

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// proxy forwards the TCP connections of one public loopback port to a
// member's current (internal) listen address.
//
// Every member is reached only through its proxies (client, HTTP, peer).
// They own the public ports for the life of the cluster, so a restarted
// member keeps its URLs although etcd binds fresh internal ports, and no
// other process can take a port while the member is down. And a stop can
// close every connection at once. etcd's peer listener resets the read
// deadline (5 s) on every Read, which races net/http's abortPendingRead: a
// peer connection whose request has just been served often stays "active"
// until that deadline, holding embed.Etcd.Close's peer shutdown for its full
// 1 s, and its goroutines (on both sides) outlive Close by up to 5 s.
// Closing the proxied connections ends them at once.
type proxy struct {
	l  net.Listener
	wg sync.WaitGroup // the accept loop and every connection's goroutines

	mu      sync.Mutex
	backend string // "" while down: new connections are closed at once
	gen     uint64 // incremented by every down and drop
	conns   map[net.Conn]struct{}
	closed  bool
}

func newProxy() (*proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{l: l, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.acceptLoop)
	return p, nil
}

// addr returns the public address ("127.0.0.1:port").
func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) acceptLoop() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // listener closed
		}
		p.mu.Lock()
		if p.closed || p.backend == "" {
			p.mu.Unlock()
			c.Close()
			continue
		}
		backend, gen := p.backend, p.gen
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.handle(c, backend, gen)
	}
}

func (p *proxy) handle(c net.Conn, backend string, gen uint64) {
	defer p.wg.Done()
	defer p.forget(c)
	b, err := net.DialTimeout("tcp", backend, 2*time.Second)
	if err != nil {
		return
	}
	defer p.forget(b)
	p.mu.Lock()
	if p.gen != gen || p.closed { // dropped while dialling
		p.mu.Unlock()
		return
	}
	p.conns[b] = struct{}{}
	p.mu.Unlock()

	// Copy both ways; the first side to end closes both connections.
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(b, c)
	pipe(c, b)
	<-done
}

func (p *proxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// up sends new connections to backend.
func (p *proxy) up(backend string) {
	p.mu.Lock()
	p.backend = backend
	p.mu.Unlock()
}

// down refuses new connections (accepts and closes them) and closes every
// open one.
func (p *proxy) down() {
	p.mu.Lock()
	p.backend = ""
	p.mu.Unlock()
	p.drop()
}

// drop closes every open connection; new ones are still forwarded.
func (p *proxy) drop() {
	p.mu.Lock()
	p.gen++
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

// close closes the public listener and every connection, and waits until
// all of the proxy's goroutines have returned.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.l.Close()
	p.down()
	p.wg.Wait()
}
