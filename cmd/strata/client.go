package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/term"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/secret"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// session is a connection to etcd for one command, on the prefix P.
type session struct {
	cli    *clientv3.Client
	layout etcdprov.Layout
	a      *app
	// ring is the keyring of --key-file, nil without one: the writers seal
	// secret values with it and open what they read.
	ring secret.Keyring
}

// endpointList splits --endpoints.
func (g *globals) endpointList() []string {
	var eps []string
	for _, ep := range strings.Split(g.endpoints, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	return eps
}

// credentials returns the user name and password of --user, --password.
// A user without a password is asked for it on the terminal (not echoed);
// without a terminal that is a usage error.
func (g *globals) credentials(stdin io.Reader, stderr io.Writer) (user, password string, err error) {
	if g.user == "" {
		if g.password != "" {
			return "", "", usagef("--password (or STRATA_PASSWORD) given without --user")
		}
		return "", "", nil
	}
	user, password, hasPassword := strings.Cut(g.user, ":")
	if user == "" {
		return "", "", usagef("--user %q has no user name", g.user)
	}
	if hasPassword && g.password != "" {
		return "", "", usagef("--user %q includes a password and --password gives one too (or STRATA_PASSWORD is set): give it once", user+":...")
	}
	if !hasPassword {
		password = g.password
	}
	if password == "" {
		f, ok := stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", "", usagef("no password for etcd user %q: use --user %s:PASSWORD, --password or STRATA_PASSWORD", user, user)
		}
		fmt.Fprintf(stderr, "Password for etcd user %s: ", user)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", "", fmt.Errorf("read password: %w", err)
		}
		password = string(b)
	}
	return user, password, nil
}

// connect opens a client on the endpoints and checks, within
// --dial-timeout, that at least one of them answers. needPrefix makes
// --prefix required.
func (a *app) connect(ctx context.Context, needPrefix bool) (*session, error) {
	if needPrefix && strings.Trim(a.g.prefix, "/") == "" {
		return nil, usagef("no prefix: give --prefix P or set STRATA_PREFIX (a key prefix like /strata/app/prod)")
	}
	if needPrefix || a.g.prefix != "" {
		if err := etcdprov.CheckPrefix(a.g.prefix); err != nil {
			return nil, usagef("--prefix: %v", err)
		}
	}
	eps := a.g.endpointList()
	if len(eps) == 0 {
		return nil, usagef("no etcd endpoints: give --endpoints or set STRATA_ENDPOINTS")
	}
	user, password, err := a.g.credentials(a.stdin, a.stderr)
	if err != nil {
		return nil, err
	}
	if a.g.dialTimeout <= 0 {
		return nil, usagef("--dial-timeout must be positive, not %v", a.g.dialTimeout)
	}
	if a.g.commandTimeout < 0 {
		return nil, usagef("--command-timeout must be 0 (no limit) or positive, not %v", a.g.commandTimeout)
	}
	if a.g.cert != "" && a.g.key == "" {
		return nil, usagef("--cert %s given without --key: a client certificate needs its private key (--key or STRATA_KEY)", a.g.cert)
	}
	if a.g.key != "" && a.g.cert == "" {
		return nil, usagef("--key %s given without --cert: a client key needs its certificate (--cert or STRATA_CERT)", a.g.key)
	}
	ring, err := a.keyring()
	if err != nil {
		return nil, err
	}
	cli, err := etcdprov.NewClient(etcdprov.ClientConfig{
		Endpoints:   eps,
		DialTimeout: a.g.dialTimeout,
		Username:    user,
		Password:    password,
		CACert:      a.g.cacert,
		Cert:        a.g.cert,
		Key:         a.g.key,
	})
	if err != nil {
		return nil, err
	}
	if err := checkReachable(ctx, cli, a.g); err != nil {
		cli.Close()
		return nil, err
	}
	s := &session{cli: cli, layout: etcdprov.NewLayout(a.g.prefix), a: a}
	if ring != nil {
		s.ring = ring
	}
	return s, nil
}

// checkReachable asks every endpoint for its status, in parallel, within
// the dial timeout. clientv3 does not block on dial, so without this an
// unreachable cluster would show only at the first request's deadline.
// Each endpoint is also probed with a plain TCP connection, so that when
// every one of them is refused or does not resolve, that is said at once
// rather than after the dial timeout.
func checkReachable(ctx context.Context, cli *clientv3.Client, g globals) error {
	dctx, cancel := context.WithTimeoutCause(ctx, g.dialTimeout, &timeoutCause{"--dial-timeout", g.dialTimeout})
	defer cancel() // ends the calls still running
	eps := cli.Endpoints()
	type result struct {
		i      int
		status bool // from Status, else from probe
		err    error
	}
	results := make(chan result, 2*len(eps))
	for i, ep := range eps {
		go func() {
			_, err := cli.Status(dctx, ep)
			results <- result{i, true, err}
		}()
		go func() { results <- result{i, false, probe(dctx, ep)} }()
	}
	statusErrs := make([]error, len(eps))
	probeErrs := make([]error, len(eps)) // refused, no such host, ...
	statusLeft, probed := len(eps), 0
	for statusLeft > 0 && probed < len(eps) {
		r := <-results
		switch {
		case r.status && r.err == nil:
			return nil // one answer is enough
		case r.status:
			statusErrs[r.i] = r.err
			statusLeft--
		case r.err != nil:
			probeErrs[r.i] = r.err
			probed++
		}
	}
	name := "etcd [" + strings.Join(eps, ",") + "]"
	for _, err := range statusErrs {
		if etcdprov.ErrorIsAuth(err) {
			return fmt.Errorf("%s: permission denied: %w", name, err)
		}
	}
	if probed == len(eps) {
		return fmt.Errorf("%s: unreachable: %w", name, errors.Join(probeErrs...))
	}
	var tc *timeoutCause
	if dctx.Err() != nil && errors.As(context.Cause(dctx), &tc) {
		if tc.flag != "--dial-timeout" {
			return fmt.Errorf("%s: no endpoint answered within %s %v (0: no limit)", name, tc.flag, tc.d)
		}
		hint := ""
		if strings.HasPrefix(eps[0], "https://") {
			hint = "; or the TLS handshake failed: check --cacert, --cert and --key"
		}
		var refused []string
		for _, err := range probeErrs {
			if err != nil {
				refused = append(refused, err.Error())
			}
		}
		if len(refused) > 0 {
			hint += "; " + strings.Join(refused, "; ")
		}
		return fmt.Errorf("%s: unreachable: no endpoint answered within %v (--dial-timeout)%s", name, g.dialTimeout, hint)
	}
	return fmt.Errorf("%s: unreachable: %w", name, errors.Join(statusErrs...))
}

// close releases the client.
func (s *session) close() { s.cli.Close() }

// writer returns a RawWriter on the prefix. schemaDoc, when set, replaces
// the published schema; noCheck turns checking off.
func (s *session) writer(schemaDoc []byte, noCheck bool) *config.RawWriter {
	opts := []config.RawWriterOption{config.WithWriteTimeout(s.a.requestTimeout())}
	if schemaDoc != nil {
		opts = append(opts, config.WithSchema(schemaDoc))
	}
	if noCheck {
		opts = append(opts, config.WithoutSchemaCheck())
	}
	if s.ring != nil {
		opts = append(opts, config.WithWriterKeyring(s.ring))
	}
	w, err := config.NewRawWriter(s.cli, s.layout.Prefix(), opts...)
	if err != nil {
		panic("strata: " + err.Error()) // connect checked the prefix
	}
	return w
}

// withTimeout bounds the etcd requests of one command by
// --command-timeout (0: no limit).
func (a *app) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if a.g.commandTimeout <= 0 {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeoutCause(ctx, a.g.commandTimeout, &timeoutCause{"--command-timeout", a.g.commandTimeout})
	}
	a.cmdCtx = ctx
	return ctx, cancel
}

// noLimit stands for "no limit" where a library takes a duration and
// treats 0 as its own default.
const noLimit = 100 * 365 * 24 * time.Hour

// requestTimeout bounds each etcd request of a command: --command-timeout,
// or no limit when it is 0.
func (a *app) requestTimeout() time.Duration {
	if a.g.commandTimeout <= 0 {
		return noLimit
	}
	return a.g.commandTimeout
}

// keyring returns the keyring of --key-file, read once and checked before
// anything is sent to etcd (a key file readable by group or others, or not
// a key file, fails here rather than at the first secret); nil without
// --key-file. Its errors never hold key material.
func (a *app) keyring() (*secret.Ring, error) {
	if a.g.keyFile == "" || a.ring != nil {
		return a.ring, nil
	}
	r, err := secret.LoadKeyFile(a.g.keyFile)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	a.ring = r
	return r, nil
}
