package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrPoolClosed is returned by Acquire on a pool that was closed, because
// the configuration replaced it or the service is stopping.
var ErrPoolClosed = errors.New("pool closed")

// Pool stands in for a database connection pool (a *sql.DB, a
// pgxpool.Pool): it hands out at most DB.PoolSize connections, opening them
// on demand and keeping released ones idle. It opens nothing real; the
// service replaces it as a whole when the db section changes, as it would
// a real pool whose address, credentials or size cannot change in place.
type Pool struct {
	db         DB
	generation int64
	slots      chan struct{} // one token per connection in use

	mu     sync.Mutex
	idle   []*Conn
	open   int
	nextID int
	closed bool
}

// Conn is one connection of a Pool.
type Conn struct {
	pool *Pool
	id   int
}

// PoolStats describes a Pool.
type PoolStats struct {
	Generation int64  `json:"generation"`
	Addr       string `json:"addr"`
	Size       int    `json:"size"`
	Open       int    `json:"open"`
	InUse      int    `json:"in_use"`
	Closed     bool   `json:"closed"`
}

// NewPool makes the pool for db; generation numbers the pools of a process.
func NewPool(db DB, generation int64) (*Pool, error) {
	if db.PoolSize < 1 {
		return nil, fmt.Errorf("pool size %d: want at least 1", db.PoolSize)
	}
	return &Pool{db: db, generation: generation, slots: make(chan struct{}, db.PoolSize)}, nil
}

// Acquire returns a connection, waiting for one to be free until ctx ends.
// Release it when done.
func (p *Pool) Acquire(ctx context.Context) (*Conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("acquire a connection to %s: %w", p.db.Address(), ctx.Err())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		<-p.slots
		return nil, ErrPoolClosed
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return c, nil
	}
	// A real pool would dial p.db.Address() here with p.db.User and
	// p.db.Password.
	p.nextID++
	p.open++
	return &Conn{pool: p, id: p.nextID}, nil
}

// Release gives the connection back. A connection of a closed pool is
// closed instead, so requests in flight when the pool is replaced finish
// on the old pool.
func (c *Conn) Release() {
	p := c.pool
	p.mu.Lock()
	if p.closed {
		p.open--
	} else {
		p.idle = append(p.idle, c)
	}
	p.mu.Unlock()
	<-p.slots
}

// ID numbers the connections of a pool from 1.
func (c *Conn) ID() int { return c.id }

// Close closes the idle connections at once and every other one when it is
// released; Acquire then fails with ErrPoolClosed. Close does not wait for
// connections in use, so the configuration goroutine that calls it is
// never held up by a slow request. It is safe to call more than once.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		p.open -= len(p.idle)
		p.idle = nil
	}
	return nil
}

// Stats returns the pool's state.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolStats{Generation: p.generation, Addr: p.db.Address(), Size: p.db.PoolSize,
		Open: p.open, InUse: len(p.slots), Closed: p.closed}
}
