package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape of a Prometheus text endpoint: the value of each counter, gauge and untyped
// sample, keyed by Key(name, labels…). Histograms and summaries contribute their _count and _sum.
type Metrics map[string]float64

// Key names one sample: the metric name and its labels, sorted by label name, as name{a="x",b="y"}.
// labels are name, value pairs.
func Key(name string, labels ...string) string {
	if len(labels) < 2 {
		return name
	}
	type pair struct{ k, v string }
	ps := make([]pair, 0, len(labels)/2)
	for i := 0; i+1 < len(labels); i += 2 {
		ps = append(ps, pair{labels[i], labels[i+1]})
	}
	slices.SortFunc(ps, func(a, b pair) int { return strings.Compare(a.k, b.k) })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.k)
		b.WriteString("=")
		b.WriteString(strconv.Quote(p.v))
	}
	b.WriteByte('}')
	return b.String()
}

// Get returns the sample's value, 0 when absent.
func (m Metrics) Get(name string, labels ...string) float64 { return m[Key(name, labels...)] }

// ParseMetrics parses the Prometheus text exposition format with prometheus/common's parser.
func ParseMetrics(r io.Reader) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Metrics{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName(), l.GetValue())
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[Key(name, labels...)] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[Key(name, labels...)] = m.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[Key(name, labels...)] = m.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[Key(name+"_count", labels...)] = float64(m.GetHistogram().GetSampleCount())
				out[Key(name+"_sum", labels...)] = m.GetHistogram().GetSampleSum()
			case dto.MetricType_SUMMARY:
				out[Key(name+"_count", labels...)] = float64(m.GetSummary().GetSampleCount())
				out[Key(name+"_sum", labels...)] = m.GetSummary().GetSampleSum()
			}
		}
	}
	return out, nil
}

// Scrape fetches and parses url.
func Scrape(ctx context.Context, url string) (Metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	// Uncompressed: the bench scrapes often (every 50ms while it measures a rate), and gzip made a
	// scrape cost twice its encoding, on the measured process's cores.
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", url, resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ErrNoVmHWM is returned when a status file has no VmHWM line (a kernel thread, or not Linux).
var ErrNoVmHWM = errors.New("no VmHWM line")

// PeakRSS returns the peak resident set size (VmHWM) of process pid, in bytes.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak rss: %w", err)
	}
	n, err := ParseVmHWM(b)
	if err != nil {
		return 0, fmt.Errorf("peak rss of %d: %w", pid, err)
	}
	return n, nil
}

// ParseVmHWM reads the "VmHWM:   123456 kB" line of a /proc/<pid>/status file and returns bytes.
func ParseVmHWM(status []byte) (int64, error) {
	n, found, err := parseStatusKB(status, "VmHWM")
	if err == nil && !found {
		return 0, ErrNoVmHWM
	}
	return n, err
}

// RSS returns the resident set size (VmRSS) of process pid now, in bytes.
func RSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	n, found, err := parseStatusKB(b, "VmRSS")
	if err == nil && !found {
		err = errors.New("no VmRSS line")
	}
	if err != nil {
		return 0, fmt.Errorf("rss of %d: %w", pid, err)
	}
	return n, nil
}

// RSSParts is a process's resident set size and its two parts, from /proc/<pid>/status: anonymous
// memory (RssAnon: heaps, stacks) and file pages (RssFile: the binary's code and data, and mapped
// files; clean, so the kernel may drop and re-read them).
type RSSParts struct{ RSS, Anon, File int64 }

// ReadRSSParts returns the RSS parts of process pid now, in bytes.
func ReadRSSParts(pid int) (RSSParts, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return RSSParts{}, fmt.Errorf("rss: %w", err)
	}
	return ParseRSSParts(b)
}

// ParseRSSParts reads the VmRSS, RssAnon and RssFile lines of a /proc/<pid>/status file.
func ParseRSSParts(status []byte) (RSSParts, error) {
	var r RSSParts
	for _, f := range []struct {
		name string
		v    *int64
	}{{"VmRSS", &r.RSS}, {"RssAnon", &r.Anon}, {"RssFile", &r.File}} {
		n, found, err := parseStatusKB(status, f.name)
		if err == nil && !found {
			err = fmt.Errorf("no %s line", f.name)
		}
		if err != nil {
			return RSSParts{}, fmt.Errorf("rss: %w", err)
		}
		*f.v = n
	}
	return r, nil
}

// parseStatusKB reads the "<field>:   123456 kB" line of a /proc/<pid>/status file and returns
// bytes, and whether the line is there.
func parseStatusKB(status []byte, field string) (int64, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := bytes.CutPrefix(sc.Bytes(), []byte(field+":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, true, fmt.Errorf("%s line %q: want \"<n> kB\"", field, rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, true, fmt.Errorf("%s line %q: bad number", field, rest)
		}
		return kb << 10, true, nil
	}
	return 0, false, sc.Err()
}

// clockTicks is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100 on every Linux
// architecture Go supports).
const clockTicks = 100

// ProcessCPU returns the CPU time (user + system) process pid has used so far, from /proc/<pid>/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	d, err := ParseStatCPU(b)
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return d, nil
}

// ParseStatCPU returns utime + stime of a /proc/<pid>/stat line. The command name (field 2) is in
// parentheses and may hold spaces and parentheses itself, so fields are counted after the last ')'.
func ParseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(stat[i+1:]))
	// After the name: state (field 3) ... utime (14), stime (15).
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > 1<<50 {
			return 0, fmt.Errorf("stat: cpu field %q is not a tick count", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / clockTicks), nil
}
