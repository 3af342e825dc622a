package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RootUser is the etcd user WithAuth creates and the cluster's own clients
// log in as.
const RootUser = "root"

const (
	// bcryptMinCost is bcrypt.MinCost: password hashing in microseconds
	// rather than tens of milliseconds (hundreds under -race).
	bcryptMinCost = 4
	// authSetupTimeout bounds the enabling of auth: less than a client's
	// DialTimeout, so that a failing setup shows in the first login's error.
	authSetupTimeout = 3 * time.Second
	// authSetupKey marks, in gRPC metadata, the calls that enable auth, so
	// that they are not held until auth is enabled.
	authSetupKey = "etcdtest-auth-setup"
)

// WithAuth turns etcd authentication on: user root, with rootPassword and
// the root role, exists and auth is enabled before the cluster serves its
// first client request, so no client ever sees the cluster without auth.
// The cluster's own clients (Client, ClientFor, NewClient, ClientConfig,
// and those behind Revision and Compact) log in as root. Auth lives in
// etcd's data, so it survives Member.Stop, Kill and Restart. Passwords are
// hashed with bcrypt's minimum cost, to keep logins fast.
//
// The setup is done by the first client request (the request waits for
// it): no client, no setup. rootPassword must not be empty. With WithTLS,
// a client that presents a certificate and no password acts as the user
// named by the certificate's common name (Certs.ClientFor).
func WithAuth(rootPassword string) Option {
	return func(o *options) {
		s := &authSetup{opts: o, password: rootPassword}
		o.cfgFns = append(o.cfgFns, func(cfg *embed.Config) {
			if rootPassword == "" {
				failStart(cfg, errors.New("etcdtest: WithAuth: empty root password"))
				return
			}
			cfg.BcryptCost = bcryptMinCost
			cfg.GRPCAdditionalServerOptions = append(cfg.GRPCAdditionalServerOptions,
				grpc.ChainUnaryInterceptor(s.unary(cfg)),
				grpc.ChainStreamInterceptor(s.stream(cfg)))
		})
		o.clientFns = append(o.clientFns, func(cfg *clientv3.Config) {
			cfg.Username, cfg.Password = RootUser, rootPassword
		})
	}
}

// authSetup enables auth once per cluster. It is done from a gRPC server
// interceptor, before the first client request is served, as this package
// has no hook after start-up: a client of the member's own endpoint
// creates root and enables auth, its calls marked with authSetupKey.
type authSetup struct {
	opts     *options // the cluster's, for the client TLS settings
	password string

	done atomic.Bool
	mu   sync.Mutex // serialises the setup
}

// unary and stream hold the calls to the member of cfg until auth is
// enabled. cfg's advertised client URL is read at the first call: the
// scheme is final only after every WithConfig tweak.
func (s *authSetup) unary(cfg *embed.Config) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := s.ensure(ctx, cfg); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func (s *authSetup) stream(cfg *embed.Config) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := s.ensure(ss.Context(), cfg); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// ensure enables auth unless it is done or ctx is a call of the setup.
func (s *authSetup) ensure(ctx context.Context, cfg *embed.Config) error {
	if s.done.Load() {
		return nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(authSetupKey)) > 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done.Load() {
		return nil
	}
	if err := s.enable(cfg.AdvertiseClientUrls[0].String()); err != nil {
		return status.Errorf(codes.Internal, "etcdtest: enable auth: %v", err)
	}
	s.done.Store(true)
	return nil
}

// enable creates root and enables auth, through endpoint. Each step accepts
// what an interrupted earlier attempt, or an earlier cluster on the same
// data (WithDir), left behind.
func (s *authSetup) enable(endpoint string) error {
	cfg := clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: DialTimeout, Logger: zap.NewNop()}
	for _, fn := range s.opts.clientFns {
		fn(&cfg)
	}
	cfg.Username, cfg.Password, cfg.Token = "", "", ""
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), authSetupTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, authSetupKey, "1")

	st, err := cli.AuthStatus(ctx)
	if err != nil {
		return fmt.Errorf("auth status: %w", err)
	}
	if st.Enabled {
		return nil
	}
	if _, err := cli.UserAdd(ctx, RootUser, s.password); err != nil && !errors.Is(err, rpctypes.ErrUserAlreadyExist) {
		return fmt.Errorf("add user %s: %w", RootUser, err)
	}
	if _, err := cli.UserGrantRole(ctx, RootUser, "root"); err != nil {
		return fmt.Errorf("grant role root to %s: %w", RootUser, err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("auth enable: %w", err)
	}
	return nil
}

// AddUserErr creates user name with a role of the same name that may read
// the keys under readPrefix and read and write those under readWritePrefix
// (each a key prefix, as clientv3.WithPrefix; empty: no such permission).
// An empty password creates a user without one, who can only act through
// a client certificate whose common name is name (see Certs.ClientFor). It
// works with auth enabled (WithAuth: the cluster's clients are root) or
// not yet.
func (c *Cluster) AddUserErr(ctx context.Context, name, password, readPrefix, readWritePrefix string) error {
	err := c.withClient(ctx, func(ctx context.Context, cli *clientv3.Client) error {
		opts := &clientv3.UserAddOptions{NoPassword: password == ""}
		if _, err := cli.UserAddWithOptions(ctx, name, password, opts); err != nil {
			return err
		}
		if _, err := cli.RoleAdd(ctx, name); err != nil {
			return err
		}
		for _, g := range []struct {
			prefix string
			perm   clientv3.PermissionType
		}{
			{readPrefix, clientv3.PermissionType(clientv3.PermRead)},
			{readWritePrefix, clientv3.PermissionType(clientv3.PermReadWrite)},
		} {
			if g.prefix == "" {
				continue
			}
			if _, err := cli.RoleGrantPermission(ctx, name, g.prefix, clientv3.GetPrefixRangeEnd(g.prefix), g.perm); err != nil {
				return err
			}
		}
		_, err := cli.UserGrantRole(ctx, name, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("etcdtest: add user %q: %w", name, err)
	}
	return nil
}

// AddUser is AddUserErr for a test; it fails the test on error.
func (c *Cluster) AddUser(t testing.TB, name, password, readPrefix, readWritePrefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), DefaultStartTimeout)
	defer cancel()
	if err := c.AddUserErr(ctx, name, password, readPrefix, readWritePrefix); err != nil {
		t.Fatal(err)
	}
}

// ClientAs returns a client on all members that logs in as user with
// password (the cluster's client settings otherwise, TLS included), closed
// on t.Cleanup. It fails the test if the login fails. An empty password
// gives a client that sends no credentials (with WithTLS, it then acts as
// the common name of its certificate).
func (c *Cluster) ClientAs(t testing.TB, user, password string) *clientv3.Client {
	t.Helper()
	cfg := c.ClientConfig()
	cfg.Username, cfg.Password = user, password
	if password == "" {
		cfg.Username = ""
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("etcdtest: client as %q: %v", user, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
