package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/internal/testkit"
)

// diskFull fills the file system under sluice's log and lake during QoS 1 ingest, keeps it full,
// then frees it: sluice must stop acknowledging, say so, lose and corrupt nothing, and resume alone.
func diskFull(ctx context.Context, e *env) *Result {
	hold, total := 8*time.Second, 45*time.Second
	rate, conns, fleet := 1500.0, 4, 200
	if e.quick {
		hold, total, rate = 3*time.Second, 12*time.Second, 1000
	}
	res := &Result{Scenario: "disk-full"}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	r, err := newRig(e, "disk-full", "", "SLUICE_WAL_SEGMENT_SIZE=1MiB", "SLUICE_LAKE_FLUSH_INTERVAL=250ms")
	if err != nil {
		res.Err = err
		return res
	}
	disk, why, err := newFullDisk(r.dir, 16<<20, func() int {
		if r.proc == nil {
			return 0
		}
		return r.proc.Pid
	})
	if err != nil {
		res.Err = err
		return res
	}
	defer disk.close()
	res.Events = "the disk under the log and the lake filled during QoS 1 ingest, held full for " + hold.String() + ", then freed; by " + disk.mode()
	if why != "" {
		res.Check(true, "substitute used", "%s", why)
	}
	r.data = disk.dataDir("disk-full")
	if err := r.start(); err != nil {
		res.Err = err
		return res
	}
	defer r.kill()
	ld := startLoad(ctx, r.chaosLoad(rate, 0, total, conns, fleet))
	can, err := startCanary(r.broker, 50*time.Millisecond)
	if err != nil {
		res.Err = err
		return res
	}
	canStopped := false
	defer func() {
		if !canStopped {
			can.stop(0, filepath.Join(r.dir, "canary.ndjson"))
		}
	}()
	// Normal operation first.
	if err := testkit.Poll(30*time.Second, 20*time.Millisecond, func() bool { return can.store.count() >= 20 }, "the canary's first acknowledgements"); err != nil {
		res.Err = err
		return res
	}
	time.Sleep(time.Second)

	// Full.
	var mu sync.Mutex
	var maxWriteErrors, maxFailing, maxBackpressure, maxAppendErrors float64
	watch := harness.Ticker(100*time.Millisecond, func() {
		m := r.metrics()
		if len(m) == 0 {
			return
		}
		mu.Lock()
		maxWriteErrors = max(maxWriteErrors, m.Get("sluice_wal_write_errors_total"))
		maxFailing = max(maxFailing, m.Get("sluice_stage_commit_failing", "stage", "archiver"), m.Get("sluice_stage_commit_failing", "stage", "decoder"))
		maxBackpressure = max(maxBackpressure, m.Get("sluice_wal_backpressure"))
		maxAppendErrors = max(maxAppendErrors, m.Get("sluice_broker_append_errors_total", "qos", "1"))
		mu.Unlock()
	})
	if err := disk.fill(); err != nil {
		watch()
		res.Err = err
		return res
	}
	tFull := time.Now()
	// sluice frees space of its own while the disk is full (the log cuts a failed write back, the lake
	// deletes a failed commit's files), and until the keeper takes it back a write may fit: an
	// acknowledgement then is right, and the check below excuses those of such a window.
	var freed spans
	lastKeep := time.Now()
	keeper := harness.Ticker(50*time.Millisecond, func() {
		now := time.Now()
		if took := disk.keep(); took > 0 {
			freed.add(lastKeep, now, took)
		}
		lastKeep = now
	})
	e.say("disk-full: full")
	noticed := testkit.Poll(30*time.Second, 20*time.Millisecond, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return maxWriteErrors > 0 || maxFailing > 0 || maxBackpressure > 0
	}, "a failure in sluice's metrics") == nil
	tNoticed := time.Now()
	res.Check(noticed, "metrics say the log or the lake cannot write", "noticed %s after the disk filled", tNoticed.Sub(tFull).Round(time.Millisecond))
	time.Sleep(hold)
	keeper()
	// PUBACKs must have stopped: none in the hold, allowing one second for what was durable before.
	quietFrom := tNoticed.Add(time.Second)
	tFree := time.Now()
	// Counted: PUBACKs in the hold, a second after the failure showed, of messages published once the
	// disk was full. Not counted: those of messages published before (durable then, perhaps; their
	// PUBACK late on a loaded machine), and those in a window where space sluice had freed was free.
	during, before, excused := 0, 0, 0
	acks, sent := can.store.published(quietFrom, tFree)
	for i, t := range acks {
		switch {
		case sent[i].Before(tFull):
			before++
		case freed.covers(t, freedAckDelay):
			excused++
		default:
			during++
		}
	}
	lastBefore := can.store.between(tFull, quietFrom)
	if err := disk.free(); err != nil {
		keeper()
		watch()
		res.Err = err
		return res
	}
	e.say("disk-full: freed")
	res.Check(during == 0, "the publishers' PUBACKs stopped while the disk was full",
		"canary PUBACKs in the %s held full of messages published while full: %d (not counted: %d in the first second after the failure showed, %d of messages published before the disk filled, %d while space sluice freed was free: %d bytes taken back in %d windows)",
		tFree.Sub(quietFrom).Round(time.Millisecond), during, lastBefore, before, excused, freed.bytes(), freed.len())
	first, resumed := time.Time{}, false
	if testkit.Poll(2*time.Minute, 20*time.Millisecond, func() bool {
		first, resumed = can.store.firstAfter(tFree)
		return resumed
	}, "a canary PUBACK after space returned") != nil {
		resumed = false
	}
	res.Check(resumed, "PUBACKs resumed by themselves once space returned", "first canary PUBACK %s after space returned", first.Sub(tFree).Round(time.Millisecond))
	healed := testkit.Poll(2*time.Minute, 50*time.Millisecond, func() bool {
		m := r.metrics()
		return len(m) > 0 && m.Get("sluice_stage_commit_failing", "stage", "archiver") == 0 && m.Get("sluice_stage_commit_failing", "stage", "decoder") == 0 &&
			m.Get("sluice_wal_backpressure") == 0
	}, "commits succeeding again") == nil
	watch()
	res.Check(healed, "lake commits succeed again (sluice_stage_commit_failing back to 0)", "%v", healed)
	res.Check(true, "what the metrics showed", "sluice_wal_write_errors_total up to %.0f, sluice_stage_commit_failing up to %.0f, sluice_wal_backpressure up to %.0f, sluice_broker_append_errors_total{qos=1} up to %.0f",
		maxWriteErrors, maxFailing, maxBackpressure, maxAppendErrors)

	// The load ends on its own (duration); the canary's messages all acknowledged.
	stats, err := ld.wait()
	if err != nil {
		res.Err = fmt.Errorf("publishers: %w", err)
		return res
	}
	canTruth := filepath.Join(r.dir, "canary.ndjson")
	cSent, cAcked, cerr := can.stop(2*time.Minute, canTruth)
	canStopped = true
	res.Check(cerr == nil, "every canary message acknowledged in the end", "%d sent, %d acknowledged (%v)", cSent, cAcked, cerr)
	if err := r.stop(); err != nil {
		res.Err = err
		return res
	}
	logs := r.logs()
	failLines := logLines(logs, disk.errorText())
	res.Check(len(failLines) > 0, "the log says why (\""+disk.errorText()+"\")", "%d lines, e.g. %s", len(failLines), oneLine(first1(failLines)))
	// Restart on the same data: the log opens without repair of damage, nothing moved aside.
	if err := r.start(); err != nil {
		res.Err = err
		return res
	}
	m := r.metrics()
	corrupt := walCorrupt(r.data)
	res.Check(m.Get("sluice_wal_repairs_total", "kind", "corruption") == 0 && len(corrupt) == 0, "the log needs no repair of damage when reopened",
		"repairs: corruption %.0f, torn_tail %.0f; moved-aside files %d", m.Get("sluice_wal_repairs_total", "kind", "corruption"),
		m.Get("sluice_wal_repairs_total", "kind", "torn_tail"), len(corrupt))
	if err := r.stop(); err != nil {
		res.Err = err
		return res
	}
	truths := []string{ld.cfg.Truth}
	if cerr == nil {
		stats.Sent += cSent
		stats.Published += cAcked
		truths = append(truths, canTruth)
	}
	if err := account(ctx, res, r.lake(), stats, truths...); err != nil {
		res.Err = err
	}
	return res
}

func first1(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return s[0]
}

// freedAckDelay is how long after space was taken back an acknowledgement may still arrive for a
// write made while it was free (the fdatasync, the PUBACK's way to the publisher).
const freedAckDelay = 100 * time.Millisecond

// spans are the windows in which the disk had free space: between two keeper runs, the second of
// which took some back.
type spans struct {
	mu    sync.Mutex
	from  []time.Time
	to    []time.Time
	taken int64
}

func (s *spans) add(from, to time.Time, bytes int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from, s.to, s.taken = append(s.from, from), append(s.to, to), s.taken+bytes
}

// covers reports whether t is in a window, or at most slack after one ended.
func (s *spans) covers(t time.Time, slack time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.from {
		if !t.Before(s.from[i]) && !t.After(s.to[i].Add(slack)) {
			return true
		}
	}
	return false
}

func (s *spans) bytes() int64 { s.mu.Lock(); defer s.mu.Unlock(); return s.taken }
func (s *spans) len() int     { s.mu.Lock(); defer s.mu.Unlock(); return len(s.from) }
