package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// This file turns errors whose words would send people the wrong way
// (gRPC's message size, etcd's "user name is empty", a deadline blamed on
// the wrong flag, a schema's internal URI) into ones that name the flag,
// file or limit to change.

// timeoutCause is the cause of a context ended by a flag's duration, so
// that a deadline is blamed on the flag that set it.
type timeoutCause struct {
	flag string
	d    time.Duration
}

func (c *timeoutCause) Error() string { return fmt.Sprintf("%s %v elapsed", c.flag, c.d) }

// defaultMaxRequestBytes is etcd's default --max-request-bytes (1.5 MiB).
const defaultMaxRequestBytes = 1572864

// grpcSendTooLarge is gRPC's client-side refusal of a message above its
// own limit (2 MiB), which is above etcd's.
var grpcSendTooLarge = regexp.MustCompile(`trying to send message larger than max \((\d+) vs\. \d+\)`)

// tooLargeError is a write that does not fit in one etcd request.
type tooLargeError struct {
	size int64 // bytes of the request, when known
	err  error
}

func (e *tooLargeError) Error() string {
	size := "the write does not fit in one etcd request"
	if e.size > 0 {
		size = fmt.Sprintf("the write needs a %d-byte etcd request", e.size)
	}
	return fmt.Sprintf("%s: etcd accepts at most its --max-request-bytes per request, %d bytes (1.5 MiB) by default, "+
		"and the whole transaction counts: the changed values, plus the release record, which holds each changed value twice (old and new); "+
		"split the change or raise etcd's --max-request-bytes", size, defaultMaxRequestBytes)
}

func (e *tooLargeError) Unwrap() error { return e.err }

// reworded is an error shown in other words.
type reworded struct {
	err error
	msg string
}

func (r *reworded) Error() string { return r.msg }
func (r *reworded) Unwrap() error { return r.err }

// schemaURI is the base URI the schema package compiles a document under;
// its errors show it where people need the file's name.
const schemaURI = "strata:///schema.json"

// schemaError names the schema's file (or key) in err instead of the
// internal URI.
func schemaError(err error, name string) error {
	msg := err.Error()
	if !strings.Contains(msg, schemaURI) {
		return err
	}
	msg = strings.ReplaceAll(msg, strconv.Quote(schemaURI+"#"), name)
	return &reworded{err: err, msg: strings.ReplaceAll(msg, schemaURI, name)}
}

// explain rewrites err, the error of a command, where its own words would
// mislead.
func (a *app) explain(err error) error {
	user, _, _ := strings.Cut(a.g.user, ":")
	if user == "" && errors.Is(err, rpctypes.ErrUserEmpty) {
		// etcd's words, "user name is empty", read as if --user "" was given.
		return &reworded{err: err, msg: strings.Replace(err.Error(), rpctypes.ErrUserEmpty.Error(),
			"etcd requires authentication: give --user NAME (or STRATA_USER), "+
				"or a client certificate whose common name is the user (--cert and --key)", 1)}
	}
	var rae *config.RolloutActiveError
	if errors.As(err, &rae) {
		// The library's words speak of a write option; say which flag.
		return &reworded{err: err, msg: strings.Replace(err.Error(), rae.Error(), rolloutActiveMessage(rae, a.g.prefix), 1)}
	}
	if errors.Is(err, rpctypes.ErrRequestTooLarge) {
		return &tooLargeError{err: err}
	}
	if m := grpcSendTooLarge.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return &tooLargeError{size: n, err: err}
	}
	if tc := a.commandTimedOut(); tc != nil && !strings.Contains(err.Error(), tc.flag) &&
		(etcdprov.ErrorIsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, config.ErrUnknownOutcome)) {
		return fmt.Errorf("%w (the command ran out of time: %s %v; 0: no limit)", err, tc.flag, tc.d)
	}
	return err
}

// rolloutActiveMessage says, in the CLI's words, why a write was refused
// during a rollout and the ways out.
func rolloutActiveMessage(e *config.RolloutActiveError, prefix string) string {
	return fmt.Sprintf("rollout %s is %s on %s: plain writes are refused until it is promoted or aborted "+
		"(strata rollout status, promote, abort); --force writes anyway and aborts the rollout", e.ID, e.State, prefix)
}

// commandTimedOut returns the cause of the command's context when
// --command-timeout ended it.
func (a *app) commandTimedOut() *timeoutCause {
	if a.cmdCtx == nil {
		return nil
	}
	var tc *timeoutCause
	if errors.As(context.Cause(a.cmdCtx), &tc) {
		return tc
	}
	return nil
}

// probeDelay is how long probe waits before it dials: a cluster that
// answers within it is never probed, so servers do not log the probe's
// bare connection (with TLS, a handshake that never comes).
const probeDelay = 100 * time.Millisecond

// probe opens a TCP connection to an endpoint to tell, soon, the failures
// that waiting for the dial timeout would not change: a host name that does
// not exist, a refused connection, no route. It returns nil when it cannot
// tell (the connection opens, the endpoint is not host:port, or ctx ends
// first).
func probe(ctx context.Context, ep string) error {
	hostport := endpointHostPort(ep)
	if hostport == "" {
		return nil
	}
	t := time.NewTimer(probeDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", hostport)
	if err == nil {
		c.Close()
		return nil
	}
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return fmt.Errorf("%s: no such host", hostport)
	}
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH} {
		if errors.Is(err, errno) {
			return fmt.Errorf("%s: %w", hostport, errno)
		}
	}
	return nil
}

// endpointHostPort is the host:port of an http:// or https:// endpoint, or
// "" for others.
func endpointHostPort(ep string) string {
	u, err := url.Parse(ep)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Port() == "" {
		return ""
	}
	return u.Host
}
