package query

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

func TestRation(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ms := time.Millisecond
	r := newRation(0.1, time.Second, t0)
	// No ingest yet: nothing waits and nothing is charged.
	r.charge(5*time.Second, at(0))
	if d := r.delay(at(0)); d != 0 {
		t.Fatalf("without ingest: delay %s, want 0", d)
	}
	r.ingest(at(0))
	if d := r.delay(at(0)); d != 0 {
		t.Fatalf("ingest, full bucket (the charge without ingest must not count): delay %s, want 0", d)
	}
	// 1.5 s of queries while ingest runs: 0.5 s of debt, repaid at 0.1 s a second: 5 s.
	r.charge(1500*ms, at(0))
	if d := r.delay(at(0)); d != 5*time.Second+ms {
		t.Fatalf("0.5 s over the burst: delay %s, want 5.001s", d)
	}
	r.ingest(at(2 * time.Second))
	if d := r.delay(at(2 * time.Second)); d != 3*time.Second+ms {
		t.Fatalf("2 s later: delay %s, want 3.001s", d)
	}
	r.ingest(at(5*time.Second + 10*ms))
	if d := r.delay(at(5*time.Second + 10*ms)); d != 0 {
		t.Fatalf("debt repaid: delay %s, want 0", d)
	}
	// Ingest stops: past ingestIdle queries no longer wait, whatever the debt.
	r.charge(10*time.Second, at(5*time.Second+20*ms))
	if d := r.delay(at(5*time.Second + 20*ms)); d <= 0 {
		t.Fatalf("10 s of debt while ingest runs: delay %s, want > 0", d)
	}
	if d := r.delay(at(5*time.Second + 10*ms + ingestIdle)); d != 0 {
		t.Fatalf("ingest idle for %s: delay %s, want 0", ingestIdle, d)
	}
	// The bucket never holds more than the burst.
	r2 := newRation(0.5, time.Second, t0)
	r2.ingest(at(time.Hour))
	r2.charge(1500*ms, at(time.Hour))
	if d := r2.delay(at(time.Hour)); d != time.Second+ms {
		t.Fatalf("after an hour of refill, 1.5 s of queries: delay %s, want 1.001s (burst 1 s, 0.5 s of debt at 0.5)", d)
	}
	// Share 1: no limit.
	r3 := newRation(1, time.Second, t0)
	r3.ingest(at(0))
	r3.charge(time.Hour, at(0))
	if d := r3.delay(at(0)); d != 0 {
		t.Fatalf("share 1: delay %s, want 0", d)
	}
}

// TestQueriesRationedWhileIngesting: with execution_share tiny, a query after the burst is used up
// waits while readings arrive, and ends in a timeout error naming the setting when it cannot get its
// turn; without ingest queries run at once.
func TestQueriesRationedWhileIngesting(t *testing.T) {
	cfg := testConfig()
	cfg.ExecutionShare = 0.001
	cfg.ExecutionBurst = time.Millisecond
	cfg.Timeout = 300 * time.Millisecond
	u := "file://" + t.TempDir()
	e := openEngine(t, u, cfg, WithHotReadings(decoderAppID))
	heavy := "SELECT count(*) FROM range(3000000) t(i) WHERE i % 7 = 3"
	for range 3 { // no ingest: never held back
		if got := count(t, e, heavy); got != 428571 {
			t.Fatalf("count = %d", got)
		}
	}
	e.AddReadings(0, testkit.Readings(10, 2, day0, 1_000_000, 0))
	_, err := tryRows(e, heavy) // uses up the burst
	if err != nil {
		t.Fatal(err)
	}
	_, err = tryRows(e, heavy)
	var qe *Error
	if !errors.As(err, &qe) || qe.Kind != ErrTimeout || !strings.Contains(qe.Message, "query.execution_share") {
		t.Fatalf("second query while ingesting: err %v, want a timeout naming query.execution_share", err)
	}
}
