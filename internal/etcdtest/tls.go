package etcdtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// certValidity is how long the certificates made by NewCerts are valid (they
// also start an hour in the past, against clock skew).
const certValidity = 7 * 24 * time.Hour

// Certs is a small PKI for tests: a certificate authority, a server
// certificate for the loopback addresses and a client certificate, all PEM
// files in Dir. Make one with NewCerts.
type Certs struct {
	// Dir holds the files.
	Dir string
	// CACert is the CA's certificate, which signed the others.
	CACert string
	// ServerCert and ServerKey are the server certificate, valid for
	// 127.0.0.1, ::1 and localhost, and its key.
	ServerCert, ServerKey string
	// ClientCert and ClientKey are a client certificate with common name
	// "root" (the etcd user a client-certificate-authenticated client acts
	// as when auth is enabled and it sends no password), and its key.
	ClientCert, ClientKey string

	mu     sync.Mutex // serialises ClientFor
	seq    int        // numbers ClientFor's files
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	loaded bool // ca and caKey are set
}

// caKeyFile is the name of the CA's key in Dir, which ClientFor reads when the
// Certs value was not made by NewCerts.
const caKeyFile = "ca-key.pem"

// NewCerts creates dir if needed and writes into it a new CA (ca.pem,
// ca-key.pem), a server certificate for 127.0.0.1, ::1 and localhost
// (server.pem, server-key.pem) and a client certificate with common name
// "root" (client.pem, client-key.pem). All keys are ECDSA P-256.
func NewCerts(dir string) (*Certs, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcdtest: certs: %w", err)
	}
	c := &Certs{
		Dir:        dir,
		CACert:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
	}
	if err := c.generate(); err != nil {
		return nil, fmt.Errorf("etcdtest: certs: %w", err)
	}
	return c, nil
}

func (c *Certs) generate() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "etcdtest CA", Organization: []string{"etcdtest"}},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writePEM(c.CACert, "CERTIFICATE", caDER); err != nil {
		return err
	}
	if err := writeKey(filepath.Join(c.Dir, caKeyFile), caKey); err != nil {
		return err
	}
	c.ca, c.caKey, c.loaded = ca, caKey, true

	serverTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost", Organization: []string{"etcdtest"}},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		// ClientAuth too, so that the same pair can serve as a peer
		// certificate.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if err := c.issue(serverTmpl, c.ServerCert, c.ServerKey); err != nil {
		return err
	}
	return c.issue(clientTemplate("root"), c.ClientCert, c.ClientKey)
}

func clientTemplate(cn string) *x509.Certificate {
	return &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn, Organization: []string{"etcdtest"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// ClientFor writes a new client certificate with common name cn, signed by
// the CA, and returns the paths of the certificate and its key (new files in
// Dir: earlier ones are never overwritten). With auth enabled and client
// certificate auth on (WithTLS), etcd takes a request that carries no token
// as coming from the user named cn. It is safe for concurrent use.
func (c *Certs) ClientFor(cn string) (cert, key string, err error) {
	if cn == "" {
		return "", "", errors.New("etcdtest: ClientFor: empty common name")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.loadCA(); err != nil {
		return "", "", fmt.Errorf("etcdtest: ClientFor %q: %w", cn, err)
	}
	c.seq++
	base := fmt.Sprintf("client-%s-%d", fileSafe(cn), c.seq)
	cert = filepath.Join(c.Dir, base+".pem")
	key = filepath.Join(c.Dir, base+"-key.pem")
	if err := c.issue(clientTemplate(cn), cert, key); err != nil {
		return "", "", fmt.Errorf("etcdtest: ClientFor %q: %w", cn, err)
	}
	return cert, key, nil
}

// loadCA reads the CA's certificate and key from the files when c was not
// made by NewCerts.
func (c *Certs) loadCA() error {
	if c.loaded {
		return nil
	}
	pair, err := tls.LoadX509KeyPair(c.CACert, filepath.Join(c.Dir, caKeyFile))
	if err != nil {
		return fmt.Errorf("load CA: %w", err)
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return fmt.Errorf("load CA: key is a %T, want ECDSA", pair.PrivateKey)
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("load CA: %w", err)
	}
	c.ca, c.caKey, c.loaded = ca, key, true
	return nil
}

// issue signs tmpl with the CA under a fresh key and writes both.
func (c *Certs) issue(tmpl *x509.Certificate, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := sign(tmpl, c.ca, &key.PublicKey, c.caKey)
	if err != nil {
		return err
	}
	if err := writePEM(certFile, "CERTIFICATE", der); err != nil {
		return err
	}
	return writeKey(keyFile, key)
}

// sign fills in the serial number and validity of tmpl and signs it.
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, signer *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	now := time.Now()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(certValidity)
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// fileSafe keeps the letters, digits, '-' and '_' of s, for a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// ClientTLS returns the TLS configuration of a client that trusts the CA and
// presents the client certificate (common name "root"), as the cluster's own
// clients do under WithTLS.
func (c *Certs) ClientTLS() (*tls.Config, error) {
	info := transport.TLSInfo{
		CertFile:      c.ClientCert,
		KeyFile:       c.ClientKey,
		TrustedCAFile: c.CACert,
		Logger:        zap.NewNop(),
	}
	cfg, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("etcdtest: client TLS: %w", err)
	}
	return cfg, nil
}

// WithTLS serves the members' client URLs (gRPC and HTTP) over TLS with
// c's server certificate, and requires client certificates signed by c's
// CA (embed's ClientTLSInfo with ClientCertAuth; no auto TLS). The client
// URLs become https://; peer traffic stays plain http. The cluster's own
// clients (Client, ClientFor, NewClient, ClientConfig, and those behind
// Revision and Compact) trust the CA and present c's client certificate
// (common name "root").
//
// If c's client files cannot be loaded, starting the cluster fails with
// that error.
func WithTLS(c *Certs) Option {
	clientTLS, tlsErr := c.ClientTLS()
	return func(o *options) {
		o.cfgFns = append(o.cfgFns, func(cfg *embed.Config) {
			cfg.ClientAutoTLS = false
			cfg.ClientTLSInfo = transport.TLSInfo{
				CertFile:       c.ServerCert,
				KeyFile:        c.ServerKey,
				TrustedCAFile:  c.CACert,
				ClientCertAuth: true,
			}
			if tlsErr != nil {
				failStart(cfg, fmt.Errorf("etcdtest: WithTLS: %w", tlsErr))
			}
		})
		o.clientFns = append(o.clientFns, func(cfg *clientv3.Config) {
			if clientTLS != nil {
				cfg.TLS = clientTLS.Clone()
			}
		})
	}
}

// failStart makes embed.StartEtcd fail with err: it runs the logger
// builder first, while validating the configuration.
func failStart(cfg *embed.Config, err error) {
	cfg.ZapLoggerBuilder = func(*embed.Config) error { return err }
}
