package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Bounds of the fleet section's process handling.
const (
	procStartTimeout = 30 * time.Second // until a started process answers /health
	procStopTimeout  = 10 * time.Second // SIGTERM, then SIGKILL
	scrapeTimeout    = 5 * time.Second
)

// etcdHelp is how to get an etcd binary, for the errors that need one.
const etcdHelp = "run .ci/etcd-bin from the repository root (it prints the path of an etcd 3.7.3 server binary, " +
	"building it into ~/.cache/strata the first time, about 3 min on 2 cores) and pass that path as -etcd or in " +
	"STRATA_ETCD_BIN; or leave the fleet section out with -sections latency,load,read,cas,fanout"

// findEtcd returns the etcd server binary of the fleet section: path if
// given, else $STRATA_ETCD_BIN, else the output of the repository's
// .ci/etcd-bin (found by walking up from the working directory; its
// progress goes to progress). The binary must answer --version.
func findEtcd(path string, progress io.Writer) (string, error) {
	from := "-etcd"
	if path == "" {
		path, from = os.Getenv("STRATA_ETCD_BIN"), "STRATA_ETCD_BIN"
	}
	if path == "" {
		script, err := findUp(filepath.Join(".ci", "etcd-bin"))
		if err != nil {
			return "", fmt.Errorf("fleet section: no etcd server binary (no -etcd, no STRATA_ETCD_BIN, and %v): %s", err, etcdHelp)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute) // a cold build takes minutes
		defer cancel()
		cmd := exec.CommandContext(ctx, script)
		cmd.Stderr = progress
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("fleet section: %s failed (%v), so there is no etcd server binary: %s", script, err, etcdHelp)
		}
		path, from = strings.TrimSpace(string(out)), script
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, abs, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "etcd Version:") {
		return "", fmt.Errorf("fleet section: %s (from %s) is not a working etcd server binary (%v: %.200q): %s",
			abs, from, err, out, etcdHelp)
	}
	return abs, nil
}

// findUp looks for rel in the working directory and its parents.
func findUp(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s in the working directory or above", rel)
		}
		dir = parent
	}
}

// proc is one etcd process, its output in a log file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

// startProc starts bin with args, its output going to dir/name.log. The
// process gets its own process group (an interrupt of the bench does not
// reach it before the bench has stopped it) and, on Linux, is killed by
// the kernel if the bench dies first.
func startProc(dir, name, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, logPath: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.SysProcAttr = procAttr()
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop ends the process: SIGTERM, then SIGKILL after procStopTimeout.
// It waits until the process has exited.
func (p *proc) stop() error {
	if p == nil {
		return nil
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(procStopTimeout):
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	return fmt.Errorf("%s did not exit within %v of SIGTERM; killed", p.name, procStopTimeout)
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// fleetEtcd is the fleet section's etcd: one server process and one
// `etcd grpc-proxy start` process in front of it, in a temp directory.
type fleetEtcd struct {
	dir            string
	server, proxy  *proc
	serverEndpoint string // http://127.0.0.1:port
	serverMetrics  string // http://127.0.0.1:port (its /metrics and /health)
	proxyEndpoint  string
	proxyMetrics   string
	serverArgs     []string
	proxyArgs      []string
	http           *http.Client
}

// startFleetEtcd starts the server and the proxy and waits until both
// answer /health. On failure it has stopped what it started and removed
// its temp directory.
func startFleetEtcd(ctx context.Context, bin string) (f *fleetEtcd, err error) {
	dir, err := os.MkdirTemp("", "strata-bench-fleet-")
	if err != nil {
		return nil, err
	}
	f = &fleetEtcd{dir: dir, http: &http.Client{Timeout: scrapeTimeout, Transport: &http.Transport{DisableKeepAlives: true}}}
	defer func() {
		if err != nil {
			err = errors.Join(err, f.Close())
			f = nil
		}
	}()
	ports, err := freePorts(5)
	if err != nil {
		return f, err
	}
	url := func(p int) string { return "http://127.0.0.1:" + strconv.Itoa(p) }
	f.serverEndpoint, f.serverMetrics = url(ports[0]), url(ports[2])
	f.proxyEndpoint, f.proxyMetrics = url(ports[3]), url(ports[4])
	f.serverArgs = []string{
		"--name", "fleet",
		"--data-dir", filepath.Join(dir, "fleet.etcd"),
		"--listen-client-urls", f.serverEndpoint,
		"--advertise-client-urls", f.serverEndpoint,
		"--listen-peer-urls", url(ports[1]),
		"--initial-advertise-peer-urls", url(ports[1]),
		"--initial-cluster", "fleet=" + url(ports[1]),
		"--listen-metrics-urls", f.serverMetrics,
		"--unsafe-no-fsync", // as the embedded etcd of the other sections
		"--log-level", "warn",
	}
	if f.server, err = startProc(dir, "etcd", bin, f.serverArgs...); err != nil {
		return f, err
	}
	if err := f.waitHealthy(ctx, f.server, f.serverMetrics); err != nil {
		return f, err
	}
	f.proxyArgs = []string{
		"grpc-proxy", "start",
		"--endpoints", strings.TrimPrefix(f.serverEndpoint, "http://"),
		"--listen-addr", strings.TrimPrefix(f.proxyEndpoint, "http://"),
		"--advertise-client-url", strings.TrimPrefix(f.proxyEndpoint, "http://"),
		"--metrics-addr", f.proxyMetrics,
		"--data-dir", filepath.Join(dir, "proxy"),
	}
	if f.proxy, err = startProc(dir, "grpc-proxy", bin, f.proxyArgs...); err != nil {
		return f, err
	}
	if err := f.waitHealthy(ctx, f.proxy, f.proxyMetrics); err != nil {
		return f, err
	}
	return f, nil
}

// waitHealthy polls base/health until it says {"health":"true"}, the
// process exits, or procStartTimeout passes.
func (f *fleetEtcd) waitHealthy(ctx context.Context, p *proc, base string) error {
	ctx, cancel := context.WithTimeout(ctx, procStartTimeout)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		if err != nil {
			return err
		}
		resp, err := f.http.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), `"health":"true"`) {
				return nil
			}
			err = fmt.Errorf("%s: %.200q", resp.Status, b)
		}
		last = err
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before it answered %s/health; its log ends:\n%s", p.name, base, p.tail(15))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer %s/health within %v (%v); its log ends:\n%s",
				p.name, base, procStartTimeout, last, p.tail(15))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close stops the proxy and the server and removes the temp directory.
func (f *fleetEtcd) Close() error {
	err := errors.Join(f.proxy.stop(), f.server.stop())
	f.http.CloseIdleConnections()
	return errors.Join(err, os.RemoveAll(f.dir))
}

// scrape reads the Prometheus text at base/metrics and returns the values
// of the named unlabelled samples (missing ones are absent from the map).
func (f *fleetEtcd) scrape(ctx context.Context, base string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/metrics: %s", base, resp.Status)
	}
	want := sectionSet(names...)
	got := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return nil, fmt.Errorf("%s/metrics: %s: %w", base, name, err)
		}
		got[name] = v
	}
	return got, sc.Err()
}

// freePorts returns n distinct free TCP ports of 127.0.0.1. All n
// listeners are held until every port is known, so none is returned twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
