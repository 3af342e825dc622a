// Package consoletest drives the strata web console (cmd/strata/internal/
// console) in headless Chromium with chromedp, against an embedded etcd.
// It is its own module so that chromedp never enters the main go.mod; run
// it with `cd cmd/strata/consoletest && go test ./...` (.ci/run does, after
// installing Debian's chromium when no browser is found). The test takes a
// screenshot of every page: into a temporary directory, or into
// $STRATA_SCREENSHOTS; docs/console-*.png come from
// `STRATA_SCREENSHOTS=$PWD/../../../docs go test ./...`.
package consoletest
