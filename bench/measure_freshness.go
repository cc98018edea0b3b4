package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/sluice-project/sluice/internal/simulate"
)

// freshnessPlan sizes the freshness measurement.
type freshnessPlan struct {
	fleet    int           // sensors, each publishing once a second: the rate
	duration time.Duration // publishing time per run
	warmup   time.Duration // readings published before this are not counted (the engine opening)
	poll     time.Duration
	runs     int
}

// sqlPath is where sluice serves SQL over HTTP (internal/query/httpsql.Path).
const sqlPath = "/api/v1/query"

// measureFreshness measures publish → visible in SQL: the simulator publishes each sensor once a
// second at QoS 1 to sluice's embedded broker, every payload carrying its publish time as its
// timestamp; a client polls sluice's SQL endpoint for the readings of the last second and records,
// for each reading the first time it sees it, now − its timestamp.
func measureFreshness(ctx context.Context, e *env, plan freshnessPlan) (*Section, []string) {
	s := &Section{Title: "Freshness: publish → visible in SQL"}
	if !queryEngineLanded(e.root) {
		s.Intro = "Not measured: query engine not landed (internal/query does not exist yet)."
		return s, nil
	}
	s.Intro = fmt.Sprintf("`sluice run` (embedded broker, default configuration) receives %s msg/s (%s sensors, each once a second, QoS 1, 4 connections); "+
		"the payload's timestamp is its publish time. A client polls POST %s every %s for the readings of the last two seconds and records, for each "+
		"reading the first time it is seen, the time since its timestamp (so the figure includes up to one poll interval of waiting). "+
		"Readings published in the first %s (the SQL engine opening) are not counted.",
		formatNum(float64(plan.fleet), 0), formatNum(float64(plan.fleet), 0), sqlPath, plan.poll, plan.warmup)
	p50 := s.Add("publish → visible, p50", "ms", 1)
	p99 := s.Add("publish → visible, p99", "ms", 1)
	worst := s.Add("publish → visible, max", "ms", 1)
	seen := s.Add("readings seen by the poller / published after warm-up", "ratio", 3)
	var errs []string
	for r := range plan.runs {
		lat, coverage, err := freshnessRun(ctx, e, plan, int64(r+1))
		if err != nil {
			if err == errNoSQL {
				s.Intro = "Not measured: the sluice binary does not serve " + sqlPath + " (query engine not wired into `sluice run`)."
				return &Section{Title: s.Title, Intro: s.Intro}, nil
			}
			errs = append(errs, fmt.Sprintf("freshness run %d: %v", r+1, err))
			continue
		}
		q := quantiles(lat, 0.5, 0.99, 1)
		e.say("freshness run %d/%d: p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d readings (%.3f seen)", r+1, plan.runs, q[0], q[1], q[2], len(lat), coverage)
		p50.Values = append(p50.Values, q[0])
		p99.Values = append(p99.Values, q[1])
		worst.Values = append(worst.Values, q[2])
		seen.Values = append(seen.Values, coverage)
	}
	return s, errs
}

var errNoSQL = fmt.Errorf("no SQL endpoint")

// freshnessRun is one run; it returns the latencies in ms and the share of published readings seen.
func freshnessRun(ctx context.Context, e *env, plan freshnessPlan, seed int64) ([]float64, float64, error) {
	p, _, err := e.startSluice("freshness", nil)
	if err != nil {
		return nil, 0, err
	}
	defer p.Kill()
	url := "http://" + p.HTTP + sqlPath + "?format=ndjson"
	// Wait for the SQL engine (it opens in the background).
	var status int
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if status, _, err = sqlQuery(ctx, url, "SELECT 1 AS one"); err == nil || status == http.StatusNotFound {
			break
		}
	}
	if status == http.StatusNotFound {
		return nil, 0, errNoSQL
	}
	if err != nil {
		return nil, 0, fmt.Errorf("SQL not ready: %w", err)
	}
	pc := simulate.DefaultConfig()
	pc.Broker, pc.Fleet, pc.Seed, pc.QoS, pc.Connections, pc.Interval, pc.Duration = "mqtt://"+p.MQTT, plan.fleet, seed, 1, 4, time.Second, plan.duration
	pc.ClientID = "bench-fresh"
	start := time.Now()
	from := start.Add(plan.warmup).UnixMicro()
	first := map[string]float64{} // sensor|ts → ms from publish to first seen
	pollCtx, stopPoll := context.WithCancel(ctx)
	pollDone := make(chan error, 1)
	go func() {
		t := time.NewTicker(plan.poll)
		defer t.Stop()
		for {
			q := fmt.Sprintf("SELECT sensor_id, epoch_us(ts) AS us FROM readings WHERE ts > now() - INTERVAL 2 SECOND AND epoch_us(ts) >= %d", from)
			_, rows, err := sqlQuery(pollCtx, url, q)
			now := time.Now()
			if err != nil && pollCtx.Err() == nil {
				pollDone <- err
				return
			}
			for _, row := range rows {
				key := fmt.Sprint(row["sensor_id"], "|", row["us"])
				if _, ok := first[key]; !ok {
					us, _ := row["us"].(float64)
					first[key] = float64(now.UnixMicro()-int64(us)) / 1000
				}
			}
			select {
			case <-pollCtx.Done():
				pollDone <- nil
				return
			case <-t.C:
			}
		}
	}()
	stats, err := simulate.Run(ctx, pc, nil)
	time.Sleep(2 * time.Second) // the last readings become visible
	stopPoll()
	perr := <-pollDone
	if err != nil {
		return nil, 0, fmt.Errorf("publisher: %w", err)
	}
	if perr != nil {
		return nil, 0, fmt.Errorf("poll: %w", perr)
	}
	lat := make([]float64, 0, len(first))
	for _, v := range first {
		lat = append(lat, v)
	}
	counted := float64(stats.Published) * float64(plan.duration-plan.warmup) / float64(plan.duration)
	if len(lat) == 0 || counted <= 0 {
		return nil, 0, fmt.Errorf("no reading seen (%d published)", stats.Published)
	}
	return lat, float64(len(lat)) / counted, nil
}

// sqlQuery posts one statement and returns the NDJSON rows.
func sqlQuery(ctx context.Context, url, sql string) (int, []map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(sql))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1000))
		return resp.StatusCode, nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	var rows []map[string]any
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return resp.StatusCode, nil, fmt.Errorf("row %q: %w", sc.Text(), err)
		}
		rows = append(rows, m)
	}
	if err := sc.Err(); err != nil {
		return resp.StatusCode, nil, err
	}
	if msg := resp.Trailer.Get("X-Sluice-Error"); msg != "" {
		return resp.StatusCode, nil, fmt.Errorf("query failed while streaming: %s", msg)
	}
	return resp.StatusCode, rows, nil
}

// quantiles returns the qs-quantiles of vs (nearest rank).
func quantiles(vs []float64, qs ...float64) []float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	out := make([]float64, len(qs))
	for i, q := range qs {
		k := int(q*float64(len(s)) + 0.5)
		out[i] = s[max(0, min(len(s)-1, k-1))]
	}
	return out
}

// queryEngineLanded reports whether internal/query holds any non-test Go file.
func queryEngineLanded(root string) bool {
	files, _ := filepath.Glob(filepath.Join(root, "internal", "query", "*.go"))
	for _, f := range files {
		if !strings.HasSuffix(f, "_test.go") {
			if _, err := os.Stat(f); err == nil {
				return true
			}
		}
	}
	return false
}
