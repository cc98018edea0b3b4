package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/bench/internal/lakecheck"
	"github.com/sluice-project/sluice/internal/simulate"
)

// hostileKind is one kind of undecodable or hostile payload and the quarantine reason it must get.
type hostileKind struct {
	name   string
	reason string
	make   func(i int, ts string, rng *rand.Rand) []byte
}

// hostileKinds are what the scenario mixes into the stream, in turn.
var hostileKinds = []hostileKind{
	{"truncated JSON", "invalid_json", func(i int, _ string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","value":`, i)
	}},
	{"binary garbage (NUL bytes, invalid UTF-8)", "invalid_json", func(i int, _ string, rng *rand.Rand) []byte {
		b := []byte{0xff, 0xfe, 0}
		for range 64 + rng.IntN(512) {
			b = append(b, byte(rng.IntN(256)))
		}
		return fmt.Appendf(b, "%d", i)
	}},
	{"100 KiB payload", "too_large", func(i int, ts string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","timestamp":%q,"value":1,"pad":"%s"}`, i, ts, strings.Repeat("x", 100<<10))
	}},
	{"10,000-deep nesting", "invalid_json", func(i int, _ string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `%s%d%s`, strings.Repeat(`{"a":`, 10_000), i, strings.Repeat("}", 10_000))
	}},
	{"non-finite number", "value_not_finite", func(i int, ts string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","timestamp":%q,"value":1e999}`, i, ts)
	}},
	{"value not a number", "value_not_number", func(i int, ts string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","timestamp":%q,"value":"abc"}`, i, ts)
	}},
	{"empty payload", "empty_payload", func(int, string, *rand.Rand) []byte { return []byte{} }},
	{"white space only", "empty_payload", func(int, string, *rand.Rand) []byte { return []byte(" \n\t ") }},
	{"array of numbers", "not_an_object", func(i int, _ string, _ *rand.Rand) []byte { return fmt.Appendf(nil, `[1,2,%d]`, i) }},
	{"JSON null", "not_an_object", func(int, string, *rand.Rand) []byte { return []byte("null") }},
	{"sensor id not UTF-8", "bad_sensor_id", func(i int, ts string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, "{\"sensor_id\":\"\xff\xfe%d\",\"timestamp\":%q,\"value\":1}", i, ts)
	}},
	{"10 KB sensor id", "bad_sensor_id", func(i int, ts string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"%s%d","timestamp":%q,"value":1}`, strings.Repeat("s", 10_000), i, ts)
	}},
	{"timestamp in 1900", "timestamp_too_old", func(i int, _ string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","timestamp":"1900-01-01T00:00:00","value":1}`, i)
	}},
	{"timestamp in 2999", "timestamp_in_future", func(i int, _ string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","timestamp":"2999-01-01T00:00:00","value":1}`, i)
	}},
	{"unreadable timestamp", "bad_timestamp", func(i int, _ string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","timestamp":"yesterday","value":1}`, i)
	}},
	{"no value", "missing_value", func(i int, ts string, _ *rand.Rand) []byte {
		return fmt.Appendf(nil, `{"sensor_id":"h-%d","timestamp":%q}`, i, ts)
	}},
}

// hostile mixes 1% undecodable and hostile payloads into a QoS 1 stream of valid ones.
func hostile(ctx context.Context, e *env) *Result {
	n, workers := 20_000, 8
	if e.quick {
		n, workers = 3200, 4
	}
	res := &Result{Scenario: "hostile", Events: fmt.Sprintf("1%% of %d messages undecodable or hostile (%d kinds, in turn)", n, len(hostileKinds))}
	start := time.Now()
	defer func() { res.Elapsed = time.Since(start) }()
	r, err := newRig(e, "hostile", "", "SLUICE_LAKE_FLUSH_INTERVAL=500ms")
	if err != nil {
		res.Err = err
		return res
	}
	// The stream: valid messages from the simulator's generator, and every 100th a hostile one.
	cfg := simulate.DefaultConfig()
	cfg.Fleet, cfg.Seed = 100, 7
	gen, err := simulate.NewGenerator(cfg, nil)
	if err != nil {
		res.Err = err
		return res
	}
	rng := rand.New(rand.NewPCG(7, 7))
	type msg struct {
		payload []byte
		kind    int // -1: valid
	}
	msgs := make([]msg, n)
	truthPath := filepath.Join(r.dir, "truth.ndjson")
	tf, err := os.Create(truthPath)
	if err != nil {
		res.Err = err
		return res
	}
	tw := bufio.NewWriter(tf)
	base := time.Now().UTC().Add(-time.Hour)
	var line []byte
	var valid int64
	for i := range msgs {
		now := base.Add(time.Duration(i) * 10 * time.Millisecond)
		if i%100 == 99 {
			k := (i / 100) % len(hostileKinds)
			msgs[i] = msg{hostileKinds[k].make(i, now.Format("2006-01-02T15:04:05.000000"), rng), k}
			continue
		}
		m := gen.Next(nil, now)
		msgs[i] = msg{m.Payload, -1}
		line = append(m.Truth.AppendJSON(line[:0]), '\n')
		tw.Write(line)
		valid++
	}
	if err := tw.Flush(); err != nil {
		res.Err = err
		return res
	}
	tf.Close()

	if err := r.start(); err != nil {
		res.Err = err
		return res
	}
	defer r.kill()
	// Publish: each worker its share, in order, every message at QoS 1 until acknowledged.
	var sent, acked atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	var unhealthy atomic.Bool
	for w := range workers {
		wg.Go(func() {
			o := paho.NewClientOptions().AddBroker(r.broker).SetClientID(fmt.Sprintf("chaos-hostile-%d", w)).
				SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).SetConnectRetryInterval(200 * time.Millisecond).
				SetWriteTimeout(10 * time.Second)
			c := paho.NewClient(o)
			if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				errs[w] = fmt.Errorf("connect: %v", tok.Error())
				return
			}
			defer c.Disconnect(100)
			for i := w; i < n; i += workers {
				sent.Add(1)
				tok := c.Publish("sensors", 1, false, msgs[i].payload)
				if !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
					errs[w] = fmt.Errorf("message %d not acknowledged: %v", i, tok.Error())
					return
				}
				acked.Add(1)
			}
		})
	}
	stopHealth := harness.Ticker(200*time.Millisecond, func() {
		if r.proc != nil && len(r.metrics()) == 0 {
			unhealthy.Store(true)
		}
	})
	wg.Wait()
	stopHealth()
	for _, err := range errs {
		if err != nil {
			res.Err = fmt.Errorf("publisher: %w", err)
			return res
		}
	}
	res.Check(!unhealthy.Load(), "sluice stayed up and answered /metrics throughout", "%v", !unhealthy.Load())
	if err := r.stop(); err != nil {
		res.Err = err
		return res
	}
	res.Sent, res.Acked = sent.Load(), acked.Load()

	chk, err := lakecheck.Open(r.lake())
	if err != nil {
		res.Err = err
		return res
	}
	defer chk.Close()
	tr, err := chk.AgainstTruth(ctx, truthPath)
	if err != nil {
		res.Err = err
		return res
	}
	rd, err := chk.Readings(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	q, err := chk.Quarantine(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	raw, err := chk.Raw(ctx)
	if err != nil {
		res.Err = err
		return res
	}
	// Every hostile payload in quarantine exactly as often as it was sent, with the reason its kind
	// must get and a detail; nothing else in quarantine.
	want := map[string][]int{} // payload -> kinds sent
	for _, m := range msgs {
		if m.kind >= 0 {
			want[string(m.payload)] = append(want[string(m.payload)], m.kind)
		}
	}
	hostileSent := int64(n - int(valid))
	var matched, wrongReason, noDetail, unexpected int64
	reasons := map[string]int{}
	var wrong []string
	for _, row := range q {
		reasons[row.Reason]++
		if row.Reason == "" || row.Detail == "" {
			noDetail++
		}
		kinds := want[string(row.Payload)]
		if len(kinds) == 0 {
			unexpected++
			continue
		}
		k := kinds[0]
		want[string(row.Payload)] = kinds[1:]
		matched++
		if row.Reason != hostileKinds[k].reason {
			wrongReason++
			if len(wrong) < 5 {
				wrong = append(wrong, fmt.Sprintf("%s → %s (%s)", hostileKinds[k].name, row.Reason, row.Detail))
			}
		}
	}
	res.InLake = tr.Found + matched
	res.Lost = (tr.Expected - tr.Found) + (hostileSent - matched)
	res.WrongValues = tr.WrongValue
	res.Duplicates = rd.Duplicates()
	res.Unacked = 0
	res.Check(matched == hostileSent && unexpected == 0, "every hostile message in quarantine/, once, and nothing else there",
		"%d hostile sent, %d found in quarantine/, %d quarantine rows not sent as hostile", hostileSent, matched, unexpected)
	res.Check(wrongReason == 0 && noDetail == 0, "each with the reason its kind must get, and a detail",
		"reasons: %s; %d with another reason %v, %d without reason or detail", formatReasons(reasons), wrongReason, wrong, noDetail)
	res.Check(tr.Expected == valid && tr.Found == valid && rd.Rows == valid, "the other 99% in readings/, each once with its value",
		"%d valid sent, %d found, %d rows in readings/", valid, tr.Found, rd.Rows)
	res.Check(raw.Rows == int64(n) && raw.DistinctPayloads == int64(len(distinctPayloads(msgs, func(m msg) []byte { return m.payload }))), "raw/ holds every message, byte for byte",
		"%d rows, %d distinct payloads, %d sent", raw.Rows, raw.DistinctPayloads, n)
	return res
}

func distinctPayloads[T any](ms []T, payload func(T) []byte) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[string(payload(m))] = true
	}
	return out
}

func formatReasons(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}
