package main

import (
	"bytes"
	"context"
	"image"
	_ "image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQuickRun runs the whole program but the fleet section (TestFleet) in
// -quick mode into a temporary directory and checks the report: every section's table has every row
// with numbers in it, the lost-update and leak checks pass, the markdown
// file equals what was printed, and the chart is a decodable PNG.
func TestQuickRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o := defaultOptions(true)
	o.out = t.TempDir()
	o.sections = sectionSet("latency", "load", "read", "cas", "fanout", "change") // the fleet: TestFleet
	var stdout, progress bytes.Buffer
	if err := run(ctx, o, &stdout, &progress); err != nil {
		t.Fatalf("run: %v\nprogress:\n%s", err, progress.String())
	}
	md := stdout.String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("report:\n%s\nprogress:\n%s", md, progress.String())
		}
	})

	// The header line names the command, Go, GOMAXPROCS and etcd.
	header := strings.SplitN(md, "\n", 4)[2]
	for _, want := range []string{"`cd examples/bench && go run . -quick`", "go1.", "GOMAXPROCS=", "etcd 3."} {
		if !strings.Contains(header, want) {
			t.Errorf("header line %q lacks %q", header, want)
		}
	}

	// want lists, per section, the first cells of the rows that must be
	// there and how many numeric cells each must have after it.
	want := map[string][]struct {
		row     string
		numbers int
	}{
		"## 1.": {{latRaw, 5}, {latStrata, 5}, {latKoanf, 5}, {ratioStrataRaw, 4}, {ratioStrataKoanf, 4}},
		"## 2.": {{loadRaw, 1}, {loadStrata, 1}, {loadKoanf, 1}, {ratioStrataRaw, 1}, {ratioStrataKoanf, 1}},
		"## 3.": {{readStrataInt, 3}, {readKoanfInt, 3}, {readStrataString, 3}, {readKoanfString, 3},
			{readStrataParallel, 3}, {readKoanfParallel, 3}, {readKoanfUnmarshal, 3},
			{ratioStrataKoanf + ": " + readStrataInt + " vs " + readKoanfInt, 1},
			{ratioStrataKoanf + ": " + readStrataString + " vs " + readKoanfString, 1},
			{ratioStrataKoanf + ": " + readStrataParallel + " vs " + readKoanfParallel, 1}},
		"## 4.": {{casRaw, 5}, {casStrata, 5}, {ratioStrataRaw, 2}},
		"## 5.": {{fanRaw, 8}, {fanStrata, 8}, {ratioStrataRaw, 8}},
		"## 7.": {{latRaw, 6}, {latStrata, 6}, {latStrataBig, 6}, {latKoanf, 6}, {ratioStrataRaw, 4}, {ratioBigRaw, 4}, {ratioStrataKoanf, 4}},
	}
	for section, rows := range want {
		table := tableOf(t, md, section)
		for _, w := range rows {
			got := table[w.row]
			if len(got) == 0 {
				t.Errorf("%s: no row %q", section, w.row)
				continue
			}
			for _, cells := range got {
				if n := countNumbers(cells); n < w.numbers {
					t.Errorf("%s: row %q has %d numeric cells, want %d: %q", section, w.row, n, w.numbers, cells)
				}
			}
		}
	}
	// Both writer counts, for both writers, and an ok check on each.
	for _, name := range []string{casRaw, casStrata} {
		rows := tableOf(t, md, "## 4.")[name]
		if len(rows) != len(o.casWriters) {
			t.Errorf("section 4: %d rows of %q, want %d", len(rows), name, len(o.casWriters))
		}
		for _, cells := range rows {
			if !strings.HasPrefix(cells[len(cells)-1], "ok (counter +"+strconv.Itoa(o.casCommits)+")") {
				t.Errorf("section 4: %q: lost-update check %q", name, cells[len(cells)-1])
			}
		}
	}
	for _, verdict := range []string{"Lost-update check: **PASS**", "**ok**: back to the baseline after every section"} {
		if !strings.Contains(md, verdict) {
			t.Errorf("report lacks %q", verdict)
		}
	}

	file, err := os.ReadFile(filepath.Join(o.out, reportFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(file) != md {
		t.Errorf("%s differs from what was printed", reportFile)
	}
	f, err := os.Open(filepath.Join(o.out, chartFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, format, err := image.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", chartFile, err)
	}
	if b := img.Bounds(); format != "png" || b.Dx() < 400 || b.Dy() < 200 {
		t.Errorf("%s: %s of %v, want a PNG of at least 400×200", chartFile, format, b.Size())
	}
}

// tableOf returns the table rows of the section whose heading starts with
// heading, keyed by their first cell (rows can repeat a first cell).
func tableOf(t *testing.T, md, heading string) map[string][][]string {
	t.Helper()
	i := strings.Index(md, "\n"+heading)
	if i < 0 {
		t.Fatalf("no section %q", heading)
	}
	body := md[i+1:]
	if j := strings.Index(body[1:], "\n## "); j >= 0 {
		body = body[:j+1]
	}
	rows := map[string][][]string{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for k := range cells {
			cells[k] = strings.TrimSpace(cells[k])
		}
		rows[cells[0]] = append(rows[cells[0]], cells[1:])
	}
	return rows
}

// countNumbers counts the cells that are numbers (a trailing × allowed).
func countNumbers(cells []string) int {
	n := 0
	for _, c := range cells {
		if _, err := strconv.ParseFloat(strings.TrimSuffix(c, "×"), 64); err == nil {
			n++
		}
	}
	return n
}
