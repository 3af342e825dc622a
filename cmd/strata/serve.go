package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/cmd/strata/internal/console"
	"github.com/strataconf/strata/config"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

// serveFlags are the flags of strata serve.
type serveFlags struct {
	prefixes  []string
	root      string
	listen    string
	tokenFile string
	noAuth    bool
	readOnly  bool
	tlsCert   string
	tlsKey    string
}

func (a *app) serveCommand() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the web console for one or more prefixes",
		Long: `Serve a web console (server-rendered pages) for the prefixes given with
--prefix (repeated) or found under --root R (the parents of P/meta/version
and P/data/ keys): the configuration with its schema types, descriptions and
secrets shown as ******, edits and pushes with a diff before saving, the
history with diffs and rollbacks, the instances and the rollout. Every write
goes through the same writer as the CLI, with the logged-in user as author.

Authentication is required. When etcd has authentication on, users log in
with their etcd user name and password and act with their etcd permissions;
otherwise with a bearer token from --token-file (one per line), on the login
form or as "Authorization: Bearer TOKEN". --insecure-no-auth serves without
authentication, only on a loopback --listen address. --read-only refuses
every write. --tls-cert and --tls-key serve HTTPS.`,
		Args: maxArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.serve(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.prefixes, "prefix", nil, "a key prefix P to serve (repeat for more; STRATA_PREFIX)")
	fl.StringVar(&f.root, "root", "", "serve every prefix found under this key prefix")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7070", "the address to listen on")
	fl.StringVar(&f.tokenFile, "token-file", "", "a file of bearer tokens, one per line (when etcd auth is off)")
	fl.BoolVar(&f.noAuth, "insecure-no-auth", false, "serve without authentication (only on a loopback --listen address)")
	fl.BoolVar(&f.readOnly, "read-only", false, "refuse every write")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM file; needs --tls-key)")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM file)")
	return cmd
}

// isLoopback reports whether the listen address is on the loopback.
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// readTokens reads a token file: one token a line; blank lines and lines
// starting with # are skipped.
func readTokens(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	defer fh.Close()
	var toks []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if len(t) < 16 {
			return nil, fmt.Errorf("--token-file %s: a token is shorter than 16 characters", path)
		}
		toks = append(toks, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("--token-file %s holds no token", path)
	}
	return toks, nil
}

// discoverPrefixes lists the prefixes under root: the parents of
// P/meta/version and P/data/ keys.
func discoverPrefixes(ctx context.Context, cli *clientv3.Client, root string) ([]string, error) {
	root = strings.TrimRight(root, "/")
	resp, err := cli.Get(ctx, root+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, etcdprov.Wrap("read "+root+"/", cli.Endpoints(), err)
	}
	var out []string
	for _, kv := range resp.Kvs {
		k := string(kv.Key)
		var p string
		if before, ok := strings.CutSuffix(k, "/meta/version"); ok {
			p = before
		} else if i := strings.Index(k, "/data/"); i > 0 {
			p = k[:i]
		} else {
			continue
		}
		if p != "" && etcdprov.CheckPrefix(p) == nil && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (a *app) serve(ctx context.Context, f *serveFlags) error {
	if f.noAuth && !isLoopback(f.listen) {
		return usagef("--insecure-no-auth is allowed only on a loopback --listen address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT), not %q", f.listen)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together")
	}
	if len(f.prefixes) == 0 && f.root == "" {
		return usagef("no prefix: give --prefix P (repeated for more), --root R or STRATA_PREFIX")
	}
	for _, p := range f.prefixes {
		if err := etcdprov.CheckPrefix(p); err != nil {
			return usagef("--prefix: %v", err)
		}
	}
	var tokens []string
	if f.tokenFile != "" {
		var err error
		if tokens, err = readTokens(f.tokenFile); err != nil {
			return err
		}
	}
	cctx, cancel := context.WithTimeout(ctx, a.requestTimeout())
	s, err := a.connect(cctx, false)
	cancel()
	if err != nil {
		return err
	}
	defer s.close()

	// Is etcd auth on? An unauthenticated client's AuthStatus says so;
	// a permission error on a plain read says so too.
	authOn := false
	cctx, cancel = context.WithTimeout(ctx, a.requestTimeout())
	if st, err := s.cli.AuthStatus(cctx); err == nil {
		authOn = st.Enabled
	} else if etcdprov.ErrorIsAuth(err) {
		authOn = true
	}
	cancel()
	if !authOn && !f.noAuth && len(tokens) == 0 {
		return usagef("etcd has no authentication on: give --token-file FILE (bearer tokens, one per line), or --insecure-no-auth on a loopback --listen address")
	}

	prefixes := slices.Clone(f.prefixes)
	if f.root != "" {
		if err := etcdprov.CheckPrefix(f.root); err != nil {
			return usagef("--root: %v", err)
		}
		cctx, cancel = context.WithTimeout(ctx, a.requestTimeout())
		found, err := discoverPrefixes(cctx, s.cli, f.root)
		cancel()
		if err != nil {
			return err
		}
		for _, p := range found {
			if !slices.Contains(prefixes, p) {
				prefixes = append(prefixes, p)
			}
		}
		if len(prefixes) == 0 {
			return fmt.Errorf("no prefix found under --root %s (no P/meta/version or P/data/ keys): %w", f.root, config.ErrNotFound)
		}
	}

	opts := console.Options{
		Client:         s.cli,
		Prefixes:       prefixes,
		EtcdAuth:       authOn,
		Tokens:         tokens,
		NoAuth:         f.noAuth,
		ReadOnly:       f.readOnly,
		SecureCookies:  f.tlsCert != "",
		RequestTimeout: a.requestTimeout(),
		Logger:         slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if s.ring != nil {
		opts.Keyring = s.ring
	}
	if authOn {
		g := a.g
		opts.NewClient = func(ctx context.Context, user, password string) (*clientv3.Client, error) {
			cli, err := etcdprov.NewClient(etcdprov.ClientConfig{Endpoints: g.endpointList(), DialTimeout: g.dialTimeout,
				Username: user, Password: password, CACert: g.cacert, Cert: g.cert, Key: g.key})
			if err != nil {
				return nil, err
			}
			if _, err := cli.Authenticate(ctx, user, password); err != nil {
				cli.Close()
				return nil, err
			}
			return cli, nil
		}
	}
	h, err := console.New(opts)
	if err != nil {
		return err
	}
	defer h.Close()

	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
	}
	mode := "bearer tokens from " + f.tokenFile
	switch {
	case f.noAuth:
		mode = "NO AUTHENTICATION (--insecure-no-auth)"
	case authOn:
		mode = "etcd users (etcd authentication is on)"
	}
	fmt.Fprintf(a.stdout, "strata console on %s://%s for %s; log in with %s%s\n", scheme, ln.Addr(), strings.Join(prefixes, ", "), mode,
		map[bool]string{true: " (read-only)", false: ""}[f.readOnly])
	errc := make(chan error, 1)
	go func() {
		if f.tlsCert != "" {
			errc <- srv.ServeTLS(ln, f.tlsCert, f.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h.Close() // ends the event streams
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return nil
	}
}
