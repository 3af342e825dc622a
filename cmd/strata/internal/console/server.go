package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/strataconf/strata/config"
	"github.com/strataconf/strata/config/secret"
	etcdprov "github.com/strataconf/strata/providers/etcd"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure a console.
type Options struct {
	// Client talks to etcd when etcd auth is off (and for logins' checks
	// and the live-update watches then). It is not closed by Close.
	Client *clientv3.Client
	// Prefixes are the configuration prefixes served, in the order shown.
	Prefixes []string
	// EtcdAuth makes the login form take an etcd user name and password:
	// each session acts through its own client, logged in as that user
	// (NewClient), so etcd RBAC decides what it may read and write.
	EtcdAuth bool
	// NewClient opens a client logged in as user (EtcdAuth only).
	NewClient func(ctx context.Context, user, password string) (*clientv3.Client, error)
	// Tokens are the bearer tokens accepted when EtcdAuth is off.
	Tokens []string
	// NoAuth serves without authentication (--insecure-no-auth); every
	// write's author is "anonymous".
	NoAuth bool
	// ReadOnly refuses every write.
	ReadOnly bool
	// SecureCookies sets the Secure flag on the session cookie (TLS).
	SecureCookies bool
	// Keyring, when set, seals secret values on write (as --key-file).
	Keyring secret.Keyring
	// RequestTimeout bounds the etcd requests of one page (default 10s).
	RequestTimeout time.Duration
	// SessionTTL is how long a session lasts without use (default 8h).
	SessionTTL time.Duration
	Logger     *slog.Logger
}

// Server is the console: an http.Handler.
type Server struct {
	opts   Options
	mux    *http.ServeMux
	tmpl   map[string]*template.Template
	static http.Handler
	log    *slog.Logger
	hub    *hub

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
}

// session is one logged-in browser (or the anonymous one of NoAuth).
type session struct {
	id      string
	user    string // shown
	author  string // recorded in releases
	csrf    string
	cli     *clientv3.Client // EtcdAuth: the user's own client; closed with the session
	expires time.Time

	mu      sync.Mutex
	pending map[string]*pending
}

// New returns a console over opts.
func New(opts Options) (*Server, error) {
	if len(opts.Prefixes) == 0 {
		return nil, errors.New("console: no prefixes to serve")
	}
	for _, p := range opts.Prefixes {
		if err := etcdprov.CheckPrefix(p); err != nil {
			return nil, fmt.Errorf("console: prefix %q: %w", p, err)
		}
	}
	if opts.EtcdAuth && opts.NewClient == nil {
		return nil, errors.New("console: EtcdAuth needs NewClient")
	}
	if !opts.EtcdAuth && opts.Client == nil {
		return nil, errors.New("console: no etcd client")
	}
	if !opts.EtcdAuth && !opts.NoAuth && len(opts.Tokens) == 0 {
		return nil, errors.New("console: no tokens, no etcd auth and not NoAuth: nobody could log in")
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 8 * time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger, sessions: map[string]*session{}}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	sub, _ := fs.Sub(staticFS, "static")
	s.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	s.hub = newHub(s.log)
	s.routes()
	return s, nil
}

// Close ends the live-update watches and every session's client.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	sessions := s.sessions
	s.sessions = map[string]*session{}
	s.mu.Unlock()
	for _, ss := range sessions {
		if ss.cli != nil {
			ss.cli.Close()
		}
	}
	s.hub.close()
	return nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.Handle("GET /static/", s.static)
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.auth(s.logout))
	m.HandleFunc("GET /{$}", s.auth(s.home))
	m.HandleFunc("GET /config", s.auth(s.configPage))
	m.HandleFunc("GET /edit", s.auth(s.editPage))
	m.HandleFunc("POST /edit", s.auth(s.write(s.editPost)))
	m.HandleFunc("POST /save", s.auth(s.write(s.savePost)))
	m.HandleFunc("GET /push", s.auth(s.pushPage))
	m.HandleFunc("POST /push", s.auth(s.write(s.pushPost)))
	m.HandleFunc("GET /history", s.auth(s.historyPage))
	m.HandleFunc("GET /diff", s.auth(s.diffPage))
	m.HandleFunc("POST /rollback", s.auth(s.write(s.rollbackPost)))
	m.HandleFunc("GET /instances", s.auth(s.instancesPage))
	m.HandleFunc("GET /rollout", s.auth(s.rolloutPage))
	m.HandleFunc("POST /rollout", s.auth(s.write(s.rolloutPost)))
	m.HandleFunc("GET /events", s.auth(s.events))
	m.HandleFunc("GET /api/config", s.auth(s.apiConfig))
	s.mux = m
}

// ServeHTTP sets the security headers and serves the console.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // not no-referrer: it makes browsers send "Origin: null" on same-site POSTs
	h.Set("X-Frame-Options", "DENY")
	if !strings.HasPrefix(r.URL.Path, "/static/") {
		h.Set("Cache-Control", "no-store")
	}
	s.mux.ServeHTTP(w, r)
}

// ---- sessions and authentication

const cookieName = "strata_console"

type ctxKey struct{}

func sessionOf(r *http.Request) *session { return r.Context().Value(ctxKey{}).(*session) }

func randomID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func (s *Server) newSession(user, author string, cli *clientv3.Client) *session {
	ss := &session{id: randomID(), user: user, author: author, csrf: randomID(), cli: cli,
		expires: time.Now().Add(s.opts.SessionTTL), pending: map[string]*pending{}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked()
	s.sessions[ss.id] = ss
	return ss
}

// sweepLocked drops the expired sessions.
func (s *Server) sweepLocked() {
	now := time.Now()
	for id, ss := range s.sessions {
		if now.After(ss.expires) {
			delete(s.sessions, id)
			if ss.cli != nil {
				go ss.cli.Close()
			}
		}
	}
}

func (s *Server) lookupSession(r *http.Request) *session {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[c.Value]
	if ss == nil {
		return nil
	}
	if time.Now().After(ss.expires) {
		s.sweepLocked()
		return nil
	}
	ss.expires = time.Now().Add(s.opts.SessionTTL)
	return ss
}

func (s *Server) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.opts.SecureCookies, MaxAge: maxAge})
}

// tokenAuthor is the author of writes made with a bearer token.
func tokenAuthor(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return "token:" + hex.EncodeToString(sum[:])[:6]
}

// checkToken compares tok with every token in constant time.
func (s *Server) checkToken(tok string) bool {
	if tok == "" {
		return false
	}
	ok := 0
	for _, t := range s.opts.Tokens {
		ok |= subtle.ConstantTimeCompare([]byte(t), []byte(tok))
	}
	return ok == 1
}

// bearerSessions holds one session per bearer token, so that API callers
// get a CSRF-free session (their requests carry no cookie).
func (s *Server) bearerSession(tok string) *session {
	id := "bearer:" + tokenAuthor(tok)
	s.mu.Lock()
	ss := s.sessions[id]
	s.mu.Unlock()
	if ss != nil {
		return ss
	}
	ss = &session{id: id, user: tokenAuthor(tok), author: tokenAuthor(tok), csrf: "", pending: map[string]*pending{}}
	ss.expires = time.Now().Add(s.opts.SessionTTL)
	s.mu.Lock()
	s.sessions[id] = ss
	s.mu.Unlock()
	return ss
}

// auth runs h for an authenticated request; others go to the login page
// (or get 401 when they sent credentials or are not a page load).
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ss *session
		bearer := false
		if a := r.Header.Get("Authorization"); a != "" {
			tok, ok := strings.CutPrefix(a, "Bearer ")
			if !ok || s.opts.EtcdAuth || !s.checkToken(strings.TrimSpace(tok)) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="strata"`)
				http.Error(w, "401 unauthorized: wrong or unknown bearer token", http.StatusUnauthorized)
				return
			}
			ss, bearer = s.bearerSession(strings.TrimSpace(tok)), true
		} else {
			ss = s.lookupSession(r)
		}
		if ss == nil && s.opts.NoAuth {
			ss = s.newSession("anonymous", "anonymous", nil)
			s.setCookie(w, ss.id, 0)
		}
		if ss == nil {
			if r.Method == http.MethodGet && r.URL.Path != "/events" && !strings.HasPrefix(r.URL.Path, "/api/") {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "401 unauthorized: log in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && !bearer {
			if !sameOrigin(r) {
				http.Error(w, "403 forbidden: cross-origin request", http.StatusForbidden)
				return
			}
			if err := r.ParseMultipartForm(4 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
				http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
				return
			}
			if subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(ss.csrf)) != 1 {
				http.Error(w, "403 forbidden: missing or wrong CSRF token (reload the page and try again)", http.StatusForbidden)
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, ss)))
	}
}

// sameOrigin refuses a request whose Origin header names another site.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// write refuses writes in read-only mode.
func (s *Server) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.ReadOnly {
			s.fail(w, r, http.StatusForbidden, "The console is read-only (--read-only): nothing can be written.")
			return
		}
		h(w, r)
	}
}

type loginView struct {
	base
	EtcdAuth bool
	Next     string
	Error    string
	Token    string // the login form's CSRF token, also in the loginCookie
}

// loginCookie holds the login form's CSRF token (a double-submit token:
// the form's POST must carry the cookie's value, which another site can
// neither read nor set), so that no other site can log a browser in with
// credentials of its own choosing.
const loginCookie = "strata_login"

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	if s.lookupSession(r) != nil || s.opts.NoAuth {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	tok := randomID()
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Value: tok, Path: "/login", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.opts.SecureCookies, MaxAge: 3600})
	s.render(w, r, http.StatusOK, "login", &loginView{base: base{Title: "Log in"}, EtcdAuth: s.opts.EtcdAuth,
		Next: safeNext(r.FormValue("next")), Token: tok})
}

// loginTokenOK reports whether a login POST carries the token of the
// login page its browser was given.
func loginTokenOK(r *http.Request) (string, bool) {
	c, err := r.Cookie(loginCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	return c.Value, subtle.ConstantTimeCompare([]byte(r.PostFormValue("csrf")), []byte(c.Value)) == 1
}

// safeNext keeps a redirect target on this site.
func safeNext(n string) string {
	if !strings.HasPrefix(n, "/") || strings.HasPrefix(n, "//") || strings.HasPrefix(n, "/\\") {
		return "/"
	}
	return n
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "403 forbidden: cross-origin request", http.StatusForbidden)
		return
	}
	if s.opts.NoAuth {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	tok, ok := loginTokenOK(r)
	if !ok {
		http.Error(w, "403 forbidden: missing or wrong login form token (open the login page again)", http.StatusForbidden)
		return
	}
	view := &loginView{base: base{Title: "Log in"}, EtcdAuth: s.opts.EtcdAuth, Next: safeNext(r.PostFormValue("next")), Token: tok}
	var ss *session
	switch {
	case s.opts.EtcdAuth:
		user, pw := strings.TrimSpace(r.PostFormValue("user")), r.PostFormValue("password")
		if user == "" || pw == "" {
			view.Error = "Give an etcd user name and password."
			s.render(w, r, http.StatusUnauthorized, "login", view)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
		defer cancel()
		cli, err := s.opts.NewClient(ctx, user, pw)
		if err != nil {
			s.log.Info("console: etcd login failed", "user", user, "err", err)
			view.Error = "etcd refused the login: wrong user name or password."
			if !etcdprov.ErrorIsAuth(err) && !strings.Contains(err.Error(), "authentication failed") {
				view.Error = "Could not log in to etcd: " + err.Error()
			}
			s.render(w, r, http.StatusUnauthorized, "login", view)
			return
		}
		ss = s.newSession(user, user, cli)
	default:
		tok := strings.TrimSpace(r.PostFormValue("token"))
		if !s.checkToken(tok) {
			view.Error = "Wrong token."
			s.render(w, r, http.StatusUnauthorized, "login", view)
			return
		}
		ss = s.newSession(tokenAuthor(tok), tokenAuthor(tok), nil)
	}
	s.setCookie(w, ss.id, 0)
	http.SetCookie(w, &http.Cookie{Name: loginCookie, Path: "/login", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.opts.SecureCookies, MaxAge: -1})
	http.Redirect(w, r, view.Next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	ss := sessionOf(r)
	s.mu.Lock()
	delete(s.sessions, ss.id)
	s.mu.Unlock()
	if ss.cli != nil {
		ss.cli.Close()
	}
	s.setCookie(w, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// client is the etcd client a request acts with.
func (s *Server) client(r *http.Request) *clientv3.Client {
	if ss := sessionOf(r); ss.cli != nil {
		return ss.cli
	}
	return s.opts.Client
}

// prefixOf is the prefix a request names (?p=), the first by default.
func (s *Server) prefixOf(r *http.Request) (string, bool) {
	p := r.FormValue("p")
	if p == "" {
		return s.opts.Prefixes[0], true
	}
	return p, slices.Contains(s.opts.Prefixes, p)
}

// writer returns a RawWriter on prefix with the request's client.
func (s *Server) writer(r *http.Request, prefix string) *config.RawWriter {
	opts := []config.RawWriterOption{config.WithWriteTimeout(s.opts.RequestTimeout)}
	if s.opts.Keyring != nil {
		opts = append(opts, config.WithWriterKeyring(s.opts.Keyring))
	}
	w, err := config.NewRawWriter(s.client(r), prefix, opts...)
	if err != nil {
		panic("console: " + err.Error()) // New checked the prefixes
	}
	return w
}

// writeOpts are the options every write of the request carries.
func writeOpts(r *http.Request, extra ...config.WriteOption) []config.WriteOption {
	ss := sessionOf(r)
	opts := []config.WriteOption{config.Author(ss.author)}
	if m := strings.TrimSpace(r.PostFormValue("message")); m != "" {
		opts = append(opts, config.Message(m))
	}
	return append(opts, extra...)
}
