// Package console is the web console of `strata serve` (issue 15): server-
// rendered pages (html/template, CSS and a small live-update script
// embedded with embed; no build step) over the same library the CLI uses.
//
// Status (keep this note current for the next session):
//
//   - Done: Server (an http.Handler) with pages per prefix: Configuration
//     (tree, schema types and descriptions, secrets and unknown keys as
//     ******; edit/add/delete a leaf with a dry-run diff before saving;
//     saves expect the revision the page was loaded at, a stale page gets
//     a conflict message and a fresh diff; schema violations next to the
//     field), Push (paste or upload YAML/JSON/TOML: validate, diff, push),
//     History (releases with author, message, time, changes; diff of two
//     releases; rollback with a confirmation step), Instances ("N of M run
//     the current version"), Rollout (rollout.Status; start, promote, abort,
//     pause, resume). Live updates by server-sent events, one etcd watch per
//     prefix shared by every browser (events carry only a revision).
//     Authentication: etcd users when etcd auth is on (each session acts
//     with its own client, so etcd RBAC decides), else bearer tokens
//     (constant-time compare) on the login form or as Authorization: Bearer;
//     --insecure-no-auth only on loopback. Sessions: random ids in HttpOnly,
//     SameSite=Strict cookies (Secure under TLS), server-side store with
//     expiry; a per-session CSRF token checked on every POST, a login-form
//     token (double-submit: the strata_login cookie, Path=/login, and the
//     form's csrf field) checked on POST /login, and the Origin header
//     checked when sent. Strict CSP, nosniff,
//     frame-ancestors 'none', Referrer-Policy same-origin. --read-only. Previewed writes are kept
//     server-side (a pending id), so values never travel back to the
//     browser. Every write carries the user as author (etcd user name, or
//     "token:<first 6 hex of sha256(token)>").
//   - Shared with the CLI through cmd/strata/internal/tree: the tree
//     rendering and masking, YAMLDocuments, Unwrap (get's JSON envelope)
//     and UnknownIn. invalidOf is a shorter copy of the CLI's (push.go).
//   - Tested: console_test.go (httptest against embedded etcd, -race):
//     every page, edit/add/delete/push/rollback/rollout flows, refusals (no
//     auth, wrong token, missing/wrong CSRF and login token, cross-origin, read-only, etcd
//     permission denied for a read-only etcd role, stale page, invalid
//     value) and no secret value in any HTML, JSON or SSE body;
//     cmd/strata/serve_test.go (flags, --root, bearer); the browser flow in
//     cmd/strata/consoletest (chromedp, headless Chromium), which writes
//     docs/console-*.png.
//   - README: "Web console", with configuration.png and conflict.png.
//   - Not done: a rollout "dry run"
//     showing each step's canaries; prefix discovery under --root happens
//     once at start-up only.
package console
