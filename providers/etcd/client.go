package etcd

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Defaults of ClientConfig.
const (
	// DefaultDialTimeout bounds the authentication that NewClient performs
	// when a Username is set.
	DefaultDialTimeout = 5 * time.Second
	// DefaultKeepAliveTime is how long a connection with open streams
	// (watches, leases) may stay silent before the client pings the server.
	DefaultKeepAliveTime = 30 * time.Second
	// DefaultKeepAliveTimeout is how long the client waits for the answer to
	// a keep-alive ping before it closes the connection.
	DefaultKeepAliveTimeout = 10 * time.Second
	// DefaultMaxReconnectDelay caps the wait between reconnection
	// attempts.
	DefaultMaxReconnectDelay = 2 * time.Second
)

// ClientConfig says how to reach etcd. Only Endpoints is required.
type ClientConfig struct {
	// Endpoints are the members' client URLs. An endpoint given as
	// host:port gets https:// when TLS is configured (TLS, CACert, Cert or
	// Key set, or another endpoint given as https://) and http://
	// otherwise; an explicit scheme is kept. An http:// endpoint together
	// with TLS settings is an error: clientv3 would silently drop TLS.
	Endpoints []string

	// DialTimeout bounds the authentication that NewClient performs when
	// Username is set (clientv3's DialTimeout). Zero or negative means
	// DefaultDialTimeout. It does not bound later calls: give those a
	// context with a deadline.
	DialTimeout time.Duration
	// KeepAliveTime is clientv3's DialKeepAliveTime; zero or negative means
	// DefaultKeepAliveTime.
	KeepAliveTime time.Duration
	// KeepAliveTimeout is clientv3's DialKeepAliveTimeout; zero or negative
	// means DefaultKeepAliveTimeout.
	KeepAliveTimeout time.Duration

	// Username and Password log in to an etcd cluster with authentication
	// enabled. Both or neither must be set. (A client that authenticates by
	// the common name of its certificate sets neither.)
	Username, Password string

	// CACert is a PEM file of the certificate authorities that signed the
	// servers' certificates; alone, it gives server-verified TLS. Without
	// it, the system's roots verify the servers.
	CACert string
	// Cert and Key are PEM files of a client certificate and its key,
	// for servers that require client certificates. Both or neither must
	// be set. They are re-read at every TLS handshake (transport.TLSInfo's
	// behaviour), so a renewed certificate is picked up without a restart.
	Cert, Key string
	// TLS, when set, is used as is; CACert, Cert and Key must then be
	// empty.
	TLS *tls.Config

	// MaxReconnectDelay caps the wait between attempts to reconnect to a
	// member; zero or negative means DefaultMaxReconnectDelay. (gRPC's own
	// default grows to two minutes, so a restarted member would be used
	// again only minutes later.)
	MaxReconnectDelay time.Duration

	// Logger is the client's logger; nil means zap.NewNop().
	Logger *zap.Logger
}

// ReconnectBackoff is the gRPC dial option NewClient uses: reconnect
// attempts start after 50 ms and back off to at most max, with jitter, and
// each attempt may take up to dialTimeout.
func ReconnectBackoff(max, dialTimeout time.Duration) grpc.DialOption {
	return grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: backoff.Config{
			BaseDelay:  50 * time.Millisecond,
			Multiplier: 1.6,
			Jitter:     0.2,
			MaxDelay:   max,
		},
		MinConnectTimeout: dialTimeout,
	})
}

// NewClient builds an etcd client; the caller must Close it. It is the one
// way the library, the strata CLI and the examples build one.
//
// It returns an error naming the endpoints when the configuration is
// invalid (no endpoints, an unknown scheme, unreadable certificate files,
// Cert without Key, Username without Password, ...) and, when Username is
// set, when the login fails: clientv3 authenticates at once, within
// DialTimeout. Wrong credentials give an error that says "authentication
// failed" and satisfies ErrorIsAuth; endpoints that do not answer in time
// give one that satisfies ErrorIsUnavailable.
//
// Without a Username, no connection is made here: an unreachable cluster, or
// a TLS handshake the server rejects, shows only at the first call, which
// then waits for its context's deadline (clientv3 waits for a usable
// connection), failing with an error that satisfies ErrorIsUnavailable.
func NewClient(cfg ClientConfig) (*clientv3.Client, error) {
	c3, err := cfg.clientv3Config()
	if err != nil {
		return nil, err
	}
	cli, err := clientv3.New(c3)
	if err != nil {
		return nil, newClientError(c3.Endpoints, cfg, err)
	}
	return cli, nil
}

// clientv3Config validates cfg and turns it into a clientv3.Config.
func (cfg ClientConfig) clientv3Config() (clientv3.Config, error) {
	fail := func(format string, args ...any) (clientv3.Config, error) {
		return clientv3.Config{}, fmt.Errorf("etcd [%s]: %s", strings.Join(cfg.Endpoints, ","), fmt.Sprintf(format, args...))
	}
	if len(cfg.Endpoints) == 0 {
		return clientv3.Config{}, errors.New("etcd: no endpoints configured")
	}
	files := cfg.CACert != "" || cfg.Cert != "" || cfg.Key != ""
	if cfg.TLS != nil && files {
		return fail("TLS is set: CACert, Cert and Key must be empty")
	}
	if cfg.Cert != "" && cfg.Key == "" {
		return fail("client certificate %s given without its key (Key)", cfg.Cert)
	}
	if cfg.Key != "" && cfg.Cert == "" {
		return fail("client key %s given without its certificate (Cert)", cfg.Key)
	}
	if cfg.Username != "" && cfg.Password == "" {
		return fail("user %q given without a password", cfg.Username)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return fail("password given without a user name")
	}

	eps, err := normalizeEndpoints(cfg.Endpoints, cfg.TLS != nil || files)
	if err != nil {
		return fail("%v", err)
	}

	tlsCfg := cfg.TLS
	if files {
		if tlsCfg, err = fileTLS(cfg.CACert, cfg.Cert, cfg.Key); err != nil {
			return fail("TLS: %v", err)
		}
	}

	dialTimeout := orDefault(cfg.DialTimeout, DefaultDialTimeout)
	c3 := clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          dialTimeout,
		DialOptions:          []grpc.DialOption{ReconnectBackoff(orDefault(cfg.MaxReconnectDelay, DefaultMaxReconnectDelay), dialTimeout)},
		DialKeepAliveTime:    orDefault(cfg.KeepAliveTime, DefaultKeepAliveTime),
		DialKeepAliveTimeout: orDefault(cfg.KeepAliveTimeout, DefaultKeepAliveTimeout),
		Username:             cfg.Username,
		Password:             cfg.Password,
		TLS:                  tlsCfg,
		Logger:               cfg.Logger,
	}
	if c3.Logger == nil {
		c3.Logger = zap.NewNop()
	}
	return c3, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// normalizeEndpoints gives host:port endpoints a scheme and checks the
// others. secure says whether TLS settings were given.
func normalizeEndpoints(in []string, secure bool) ([]string, error) {
	eps := make([]string, len(in))
	for i, ep := range in {
		ep = strings.TrimSpace(ep)
		if ep == "" {
			return nil, errors.New("empty endpoint")
		}
		eps[i] = ep
		if schemeOf(ep) == "https" || schemeOf(ep) == "unixs" {
			secure = true
		}
	}
	for i, ep := range eps {
		switch s := schemeOf(ep); s {
		case "":
			if strings.HasPrefix(ep, "/") {
				return nil, fmt.Errorf("endpoint %q: want host:port or a URL", ep)
			}
			if secure {
				eps[i] = "https://" + ep
			} else {
				eps[i] = "http://" + ep
			}
		case "unix", "unixs":
			// clientv3's own forms (unix:path, unixs:path); kept as is.
			if s == "unix" && secure {
				return nil, fmt.Errorf("endpoint %q is plain unix while TLS is configured; use unixs:", ep)
			}
		case "http", "https":
			u, err := url.Parse(ep)
			if err != nil {
				return nil, fmt.Errorf("endpoint %q: %v", ep, err)
			}
			if u.Host == "" {
				return nil, fmt.Errorf("endpoint %q has no host", ep)
			}
			if s == "http" && secure {
				return nil, fmt.Errorf("endpoint %q is http:// while TLS is configured (it would be used without TLS); use https:// or host:port", ep)
			}
		default:
			return nil, fmt.Errorf("endpoint %q: unsupported scheme %q (want http, https, unix or unixs)", ep, s)
		}
	}
	return eps, nil
}

// schemeOf returns the scheme of an endpoint ("" for host:port).
func schemeOf(ep string) string {
	if i := strings.Index(ep, "://"); i > 0 {
		return strings.ToLower(ep[:i])
	}
	for _, s := range []string{"unixs", "unix"} {
		if strings.HasPrefix(ep, s+":") {
			return s
		}
	}
	return ""
}

// fileTLS builds the TLS configuration of PEM files through
// transport.TLSInfo, checking first that the CA file holds a certificate
// (TLSInfo accepts a file without any, and every handshake would then fail).
func fileTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		if !hasPEMCertificate(b) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificate found", caFile)
		}
	}
	info := transport.TLSInfo{CertFile: certFile, KeyFile: keyFile, TrustedCAFile: caFile, Logger: zap.NewNop()}
	c, err := info.ClientConfig()
	if err != nil {
		if certFile != "" {
			return nil, fmt.Errorf("client certificate %s / key %s: %w", certFile, keyFile, err)
		}
		return nil, fmt.Errorf("CA certificate %s: %w", caFile, err)
	}
	return c, nil
}

func hasPEMCertificate(b []byte) bool {
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return false
		}
		if block.Type == "CERTIFICATE" {
			return true
		}
	}
}

// newClientError explains a failure of clientv3.New, which (with a
// Username) has just tried to log in.
func newClientError(eps []string, cfg ClientConfig, err error) error {
	prefix := "etcd [" + strings.Join(eps, ",") + "]"
	switch {
	case ErrorIsAuth(err):
		return fmt.Errorf("%s: authentication failed for user %q: %w", prefix, cfg.Username, err)
	case ErrorIsUnavailable(err):
		return fmt.Errorf("%s: cannot log in as %q: no answer within %v (endpoints down or unreachable, or TLS handshake rejected): %w",
			prefix, cfg.Username, orDefault(cfg.DialTimeout, DefaultDialTimeout), err)
	default:
		return fmt.Errorf("%s: %w", prefix, err)
	}
}

// ErrorIsAuth reports whether err (from NewClient or any client call) is an
// authentication or authorization failure: wrong user name or password, a
// permission the user lacks, an invalid or expired token, or a request
// without credentials to a cluster that requires them.
func ErrorIsAuth(err error) bool {
	if err == nil {
		return false
	}
	for _, target := range []error{
		rpctypes.ErrAuthFailed,
		rpctypes.ErrPermissionDenied,
		rpctypes.ErrInvalidAuthToken,
		rpctypes.ErrUserEmpty, // no credentials while auth is enabled
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.PermissionDenied, codes.Unauthenticated:
			return true
		}
	}
	return false
}

// ErrorIsUnavailable reports whether err (from NewClient or any client call)
// means the cluster could not serve the request: no endpoint reachable (or
// every TLS handshake failed) before the deadline, connections lost, no
// leader, or a request that timed out inside the cluster.
func ErrorIsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return true
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		return ee.Code() == codes.Unavailable || ee.Code() == codes.DeadlineExceeded
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded:
			return true
		}
	}
	return false
}
