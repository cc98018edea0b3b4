package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

// fixtureMessages returns the topic and payload of each line of payload-variants.ndjson.
func fixtureMessages(t testing.TB) (topics []string, payloads [][]byte) {
	t.Helper()
	f, err := os.Open(filepath.Join(testkit.RepoRoot(t), "testdata", "fixtures", "payload-variants.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m struct {
			Topic   string          `json:"topic"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		topics = append(topics, m.Topic)
		payloads = append(payloads, []byte(m.Payload))
	}
	return topics, payloads
}

// TestEmbeddedBrokerEndToEnd publishes the four fixture shapes and a run of generated readings to
// the embedded broker, stops sluice, and reads every table back value by value.
func TestEmbeddedBrokerEndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil)
	pub := newPublisher(t, "tcp://"+p.MQTT, "e2e-embedded")
	deadline := time.Now().Add(30 * time.Second)

	topics, payloads := fixtureMessages(t)
	for i := range topics {
		if err := pub.publish(topics[i], payloads[i], deadline); err != nil {
			t.Fatal(err)
		}
	}
	const n = 500
	base := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		payload := fmt.Sprintf(`{"sensor_id":"gen-%d","timestamp":%q,"value":%d.25,"metadata":{"unit":"bar","type":"pressure"}}`,
			i%10, base.Add(time.Duration(i)*time.Second).Format("2006-01-02T15:04:05.000000"), i)
		if err := pub.publish("sensors", []byte(payload), deadline); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get("http://" + p.HTTP + "/metrics")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %v %v", err, resp)
	}
	resp.Body.Close()
	p.stop(t, 30*time.Second)

	lake := filepath.Join(dir, "lake")
	db := duck(t)
	readings := tableSQL(t, lake, "readings")
	if readings == "" {
		t.Fatalf("no readings committed:\n%s", p.Logs())
	}
	if got := queryInt(t, db, "SELECT count(*) FROM "+readings); got != n+4 {
		t.Fatalf("readings has %d rows, want %d", got, n+4)
	}
	// The four fixture shapes, value by value (timestamps as UTC instants).
	want := []struct {
		sensor, metric, ts, unit string
		value                    float64
	}{
		{"1", "temperature", "2026-11-22 17:40:25.123456+00", "C", 23},
		{"Sensor 3", "temperature", "2026-11-22 17:40:25+00", "C", 31.42},
		{"pump-07", "vibration", "2026-11-22 17:40:25.5+00", "", 4.2},
		{"pump-07", "temperature", "2026-11-22 17:40:25.123+00", "", 71.3},
	}
	for _, w := range want {
		var unit string
		var value float64
		q := fmt.Sprintf("SELECT coalesce(unit,''), value FROM %s WHERE sensor_id = ? AND metric = ? AND ts = ?::TIMESTAMPTZ", readings)
		if err := db.QueryRow(q, w.sensor, w.metric, w.ts).Scan(&unit, &value); err != nil {
			t.Fatalf("reading %s/%s at %s: %v", w.sensor, w.metric, w.ts, err)
		}
		if unit != w.unit || value != w.value {
			t.Fatalf("reading %s/%s at %s = (%q, %v), want (%q, %v)", w.sensor, w.metric, w.ts, unit, value, w.unit, w.value)
		}
	}
	// The generated run: every value where it belongs.
	rows, err := db.Query(fmt.Sprintf("SELECT sensor_id, epoch_us(ts), value, unit FROM %s WHERE metric = 'pressure' ORDER BY ts", readings))
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for rows.Next() {
		var sensor, unit string
		var ts int64
		var value float64
		if err := rows.Scan(&sensor, &ts, &value, &unit); err != nil {
			t.Fatal(err)
		}
		wantTS := base.Add(time.Duration(i) * time.Second).UnixMicro()
		if sensor != fmt.Sprintf("gen-%d", i%10) || ts != wantTS || value != float64(i)+0.25 || unit != "bar" {
			t.Fatalf("generated reading %d = (%s, %d, %v, %s), want (gen-%d, %d, %v, bar)", i, sensor, ts, value, unit, i%10, wantTS, float64(i)+0.25)
		}
		i++
	}
	rows.Close()
	if i != n {
		t.Fatalf("read %d generated readings, want %d", i, n)
	}
	// raw/ holds every payload byte for byte.
	raw := tableSQL(t, lake, "raw")
	if got := queryInt(t, db, "SELECT count(*) FROM "+raw); got != n+4 {
		t.Fatalf("raw has %d rows, want %d", got, n+4)
	}
	for i := range payloads {
		var c int64
		if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %s WHERE payload = ? AND topic = ? AND source = 'mqtt' AND qos = 1", raw), payloads[i], topics[i]).Scan(&c); err != nil {
			t.Fatal(err)
		}
		if c != 1 {
			t.Fatalf("raw holds fixture %d %d times, want exactly once, byte for byte", i, c)
		}
	}
	// The registry was archived.
	if sensors := tableSQL(t, lake, "sensors"); sensors == "" || queryInt(t, db, "SELECT count(*) FROM "+sensors) != 1 {
		t.Fatalf("sensors/ must hold the one registry version")
	}
}

// TestMalformedPayloadsQuarantined sends hostile and broken payloads: sluice stays up, each lands
// in quarantine/ with its reason and in raw/ untouched, and good messages around them are unaffected.
func TestMalformedPayloadsQuarantined(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, nil)
	pub := newPublisher(t, "tcp://"+p.MQTT, "e2e-malformed")
	deadline := time.Now().Add(30 * time.Second)
	now := time.Now().UTC()
	bad := []struct {
		payload string
		reason  string
	}{
		{`{"sensor_id":"1","value":`, "invalid_json"},
		{`{"sensor_id":"1","timestamp":"2026-11-22T17:40:25","value":"abc"}`, "value_not_number"},
		{`{"sensor_id":"1","timestamp":"2026-11-22T17:40:25","value":NaN}`, ""},
		{``, "empty_payload"},
		{`{"sensor_id":"1","timestamp":"1970-01-02T00:00:00","value":1}`, "timestamp_too_old"},
		{fmt.Sprintf(`{"sensor_id":"1","timestamp":%q,"value":1}`, now.Add(30*24*time.Hour).Format("2006-01-02T15:04:05")), "timestamp_in_future"},
		{`[1,2,3]`, "not_an_object"},
		{`{"sensor_id":"1","timestamp":"2026-11-22T17:40:25","value":` + strings.Repeat("9", 200_000) + `}`, "too_large"},
	}
	good := func(i int) string {
		return fmt.Sprintf(`{"sensor_id":"ok-%d","timestamp":%q,"value":%d}`, i, now.Add(-time.Duration(i)*time.Second).Format("2006-01-02T15:04:05"), i)
	}
	for i, b := range bad {
		if err := pub.publish("sensors", []byte(good(i)), deadline); err != nil {
			t.Fatal(err)
		}
		if err := pub.publish("sensors", []byte(b.payload), deadline); err != nil {
			t.Fatal(err)
		}
	}
	if resp, err := http.Get("http://" + p.HTTP + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("sluice unhealthy after hostile input: %v", err)
	}
	p.stop(t, 30*time.Second)

	lake := filepath.Join(dir, "lake")
	db := duck(t)
	q := tableSQL(t, lake, "quarantine")
	if q == "" {
		t.Fatalf("nothing quarantined:\n%s", p.Logs())
	}
	if got := queryInt(t, db, "SELECT count(*) FROM "+q); got != int64(len(bad)) {
		t.Fatalf("quarantine holds %d messages, want %d", got, len(bad))
	}
	for _, b := range bad {
		var reason string
		var detail string
		if err := db.QueryRow(fmt.Sprintf("SELECT reason, detail FROM %s WHERE payload = ?", q), []byte(b.payload)).Scan(&reason, &detail); err != nil {
			t.Fatalf("payload %.40q not in quarantine: %v", b.payload, err)
		}
		if b.reason != "" && reason != b.reason {
			t.Fatalf("payload %.40q quarantined as %q (%s), want %q", b.payload, reason, detail, b.reason)
		}
		if reason == "" || detail == "" {
			t.Fatalf("payload %.40q quarantined without reason/detail", b.payload)
		}
	}
	if got := queryInt(t, db, "SELECT count(*) FROM "+tableSQL(t, lake, "readings")); got != int64(len(bad)) {
		t.Fatalf("readings has %d rows, want the %d good messages", got, len(bad))
	}
	if got := queryInt(t, db, "SELECT count(*) FROM "+tableSQL(t, lake, "raw")); got != int64(2*len(bad)) {
		t.Fatalf("raw has %d rows, want all %d messages", got, 2*len(bad))
	}
}

// TestCrashSIGKILLEmbeddedBroker kills sluice with SIGKILL at random moments while QoS 1 publishers
// with persistent sessions send N messages to the embedded broker, restarting it each time. At the end
// readings/ holds exactly N readings, each once, and raw/ holds every message at least once.
func TestCrashSIGKILLEmbeddedBroker(t *testing.T) {
	crashTest(t, "", 6)
}

// TestCrashSIGKILLMosquitto does the same with sluice subscribed to a real Mosquitto: every message
// Mosquitto delivered but sluice did not acknowledge before dying is redelivered to the persistent
// session and must end up in the lake exactly once.
func TestCrashSIGKILLMosquitto(t *testing.T) {
	m := testkit.StartMosquitto(t, "max_inflight_messages 1000", "max_queued_messages 100000")
	crashTest(t, m.URL, 6)
}

func crashTest(t *testing.T, externalBroker string, kills int) {
	dir := t.TempDir()
	env := []string{"SLUICE_LAKE_FLUSH_INTERVAL=250ms", "SLUICE_MQTT_CLIENT_ID=sluice-crash"}
	args := []string{}
	brokerURL := externalBroker
	if externalBroker == "" {
		addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
		args = append(args, "--mqtt-listen", addr)
		brokerURL = "tcp://" + addr
	} else {
		args = append(args, "--broker", externalBroker)
	}
	p := start(t, dir, env, args...)
	p.waitReady(t) // sluice's persistent session exists from here on: nothing published later is dropped

	const publishers, per = 4, 1500
	const n = publishers * per
	base := time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	var acked atomic.Int64
	errs := make(chan error, publishers)
	pubs := make([]*publisher, publishers)
	for w := range pubs {
		pubs[w] = newPublisher(t, brokerURL, fmt.Sprintf("crash-pub-%d", w))
	}
	for w, pub := range pubs {
		wg.Go(func() {
			deadline := time.Now().Add(3 * time.Minute)
			for i := 0; i < per; i++ {
				if externalBroker != "" {
					// The broker, not sluice, acknowledges the publishers: pace them so the stream
					// outlasts the kills.
					time.Sleep(2 * time.Millisecond)
				}
				seq := w*per + i
				payload := fmt.Sprintf(`{"sensor_id":"s-%d","timestamp":%q,"value":%d}`, w, base.Add(time.Duration(i)*time.Millisecond).Format("2006-01-02T15:04:05.000000"), seq)
				if err := pub.publish("sensors", []byte(payload), deadline); err != nil {
					errs <- err
					return
				}
				acked.Add(1)
			}
		})
	}

	// Kill k comes once k/(kills+1) of the messages were acknowledged, plus a random moment: every kill
	// lands mid-stream, whatever the machine's speed.
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	for killed := 1; killed <= kills; killed++ {
		threshold := int64(killed * n / (kills + 1))
		testkit.Eventually(t, 2*time.Minute, func() bool { return acked.Load() >= threshold }, "publishers stalled at %d of %d acknowledged", acked.Load(), n)
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		if acked.Load() >= n {
			t.Fatalf("publishers finished before kill %d: the test proves nothing", killed)
		}
		p.kill()
		t.Logf("SIGKILL %d at %d of %d acknowledged", killed, acked.Load(), n)
		p = start(t, dir, env, args...)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, pub := range pubs {
		pub.settle(t, time.Minute)
	}
	// An external broker acknowledged the publishers, not sluice: its queue for sluice's session may
	// still hold messages. A sentinel published last is delivered after them (the session's queue is
	// FIFO), and once it is committed, so is everything before it in sluice's log.
	sentinel := newPublisher(t, brokerURL, "crash-sentinel")
	if err := sentinel.publish("sensors", []byte(`{"sensor_id":"sentinel","timestamp":"2026-11-24T00:00:00","value":-1}`), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	lake := filepath.Join(dir, "lake")
	db := duck(t)
	testkit.Eventually(t, 2*time.Minute, func() bool {
		q := tableSQL(t, lake, "readings")
		return q != "" && queryInt(t, db, "SELECT count(*) FROM "+q+" WHERE sensor_id = 'sentinel'") == 1
	}, "the sentinel never reached readings/:\n%s", p.Logs())
	killed := kills
	p.stop(t, 60*time.Second)

	readings := "(SELECT * FROM " + tableSQL(t, lake, "readings") + " WHERE sensor_id <> 'sentinel')"
	total := queryInt(t, db, "SELECT count(*) FROM "+readings)
	distinct := queryInt(t, db, "SELECT count(DISTINCT (sensor_id, ts)) FROM "+readings)
	values := queryInt(t, db, "SELECT count(DISTINCT value) FROM "+readings)
	raw := "(SELECT * FROM " + tableSQL(t, lake, "raw") + " WHERE NOT contains(decode(payload), 'sentinel'))"
	rawAll := queryInt(t, db, "SELECT count(*) FROM "+raw)
	rawDistinct := queryInt(t, db, "SELECT count(DISTINCT payload) FROM "+raw)
	t.Logf("kills=%d sent=%d readings=%d distinct=%d raw=%d raw_distinct=%d", killed, n, total, distinct, rawAll, rawDistinct)
	if keep := os.Getenv("SLUICE_E2E_KEEP"); keep != "" && (distinct != n || total != n) {
		_ = exec.Command("cp", "-a", dir, keep).Run()
		t.Logf("data directory copied to %s", keep)
	}
	if distinct != n || values != n {
		t.Fatalf("readings/ holds %d distinct readings (%d distinct values), want exactly %d: lost %d", distinct, values, n, n-distinct)
	}
	if total != n {
		t.Fatalf("readings/ holds %d rows for %d distinct readings: %d duplicates", total, distinct, total-distinct)
	}
	if rawDistinct != n {
		t.Fatalf("raw/ holds %d distinct messages, want every one of %d at least once", rawDistinct, n)
	}
	var minV, maxV float64
	if err := db.QueryRow("SELECT min(value), max(value) FROM "+readings).Scan(&minV, &maxV); err != nil || minV != 0 || maxV != n-1 || math.IsNaN(minV) {
		t.Fatalf("values span [%v, %v], want [0, %d] (%v)", minV, maxV, n-1, err)
	}
}

// TestExternalMosquittoDefaultPort runs sluice against the machine's Mosquitto on 127.0.0.1:1883
// (CI makes sure one runs), on a topic of its own.
func TestExternalMosquittoDefaultPort(t *testing.T) {
	c, err := net.DialTimeout("tcp", "127.0.0.1:1883", time.Second)
	if err != nil {
		t.Skip("no MQTT broker on 127.0.0.1:1883 (CI starts Mosquitto there)")
	}
	c.Close()
	dir := t.TempDir()
	prefix := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	p := start(t, dir, []string{"SLUICE_MQTT_TOPICS=" + prefix + "/#", "SLUICE_MQTT_CLIENT_ID=sluice-" + prefix}, "--broker", "mqtt://127.0.0.1:1883")
	pub := newPublisher(t, "tcp://127.0.0.1:1883", "pub-"+prefix)
	deadline := time.Now().Add(30 * time.Second)
	const n = 200
	// sluice subscribes asynchronously after ready: retained-free QoS 1 messages published before the
	// subscription exists would be dropped by the broker, so wait for the subscription to show in metrics.
	p.waitReady(t)
	for i := 0; i < n; i++ {
		payload := fmt.Sprintf(`{"sensor_id":"ext-%d","timestamp":"2026-11-24T12:%02d:%02d","value":%d}`, i%4, i/60, i%60, i)
		if err := pub.publish(fmt.Sprintf("%s/sensor/%d", prefix, i%4), []byte(payload), deadline); err != nil {
			t.Fatal(err)
		}
	}
	lake := filepath.Join(dir, "lake")
	// Every message was acknowledged to the publisher, but Mosquitto delivers to sluice's subscription
	// on its own schedule: wait until the archiver has taken all n in before stopping.
	testkit.Eventually(t, 30*time.Second, func() bool { return metric(t, p.HTTP, "sluice_stage_records_total{stage=\"archiver\"}") >= n },
		"archiver took in fewer than %d messages", n)
	p.stop(t, 30*time.Second)
	db := duck(t)
	if got := queryInt(t, db, "SELECT count(*) FROM "+tableSQL(t, lake, "raw")); got != n {
		t.Fatalf("raw has %d messages, want %d:\n%s", got, n, p.Logs())
	}
	// Every message has its own second: 200 distinct (sensor, ts) keys.
	if got := queryInt(t, db, "SELECT count(*) FROM "+tableSQL(t, lake, "readings")); got != n {
		t.Fatalf("readings has %d rows, want %d", got, n)
	}
}

// metric returns the value of one sample line of /metrics (0 when absent).
func metric(t testing.TB, httpAddr, sample string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), sample+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// TestStartupErrors checks that bad configuration and a taken port fail at start-up with the key or
// the port named and the fix shown.
func TestStartupErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	badCfg := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badCfg, []byte("mqtt:\n  qos: 2\nlake:\n  flush_intervl: 1m\n"), 0o600)
	cases := []struct {
		name     string
		args     []string
		env      []string
		code     int
		contains []string
	}{
		{"mqtt port taken", []string{"run", "--mqtt-listen", taken.Addr().String(), "--http", "127.0.0.1:0"}, nil, 1,
			[]string{"is already in use", "--broker mqtt://" + taken.Addr().String(), "--mqtt-listen"}},
		{"unknown key in file", []string{"run", "--config", badCfg}, nil, 2,
			[]string{"lake.flush_intervl: unknown key", "bad.yaml:4", `did you mean "flush_interval"`}},
		{"bad env value", []string{"run"}, []string{"SLUICE_WAL_SEGMENT_SIZE=huge"}, 2,
			[]string{"wal.segment_size", "SLUICE_WAL_SEGMENT_SIZE"}},
		{"config validate", []string{"config", "validate", badCfg}, nil, 2, []string{"lake.flush_intervl"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(sluiceBin, c.args...)
			cmd.Dir = t.TempDir()
			cmd.Env = append(os.Environ(), c.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != c.code {
				t.Fatalf("exit code %d, want %d:\n%s", code, c.code, out)
			}
			for _, s := range c.contains {
				if !strings.Contains(string(out), s) {
					t.Fatalf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestConfigCommand checks that `sluice config` prints a documented configuration that
// `sluice config validate` accepts as it is.
func TestConfigCommand(t *testing.T) {
	out, err := exec.Command(sluiceBin, "config").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"data_dir: ./sluice-data", "# env: SLUICE_MQTT_BROKER", "listen: 127.0.0.1:1883", "flush_interval:"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("sluice config lacks %q:\n%s", want, out)
		}
	}
	f := filepath.Join(t.TempDir(), "all.yaml")
	os.WriteFile(f, out, 0o600)
	if out, err := exec.Command(sluiceBin, "config", "validate", f).CombinedOutput(); err != nil {
		t.Fatalf("sluice config validate on the printed defaults: %v\n%s", err, out)
	}
}

// TestRunSimulate runs the README's first command, `sluice run --simulate`, for a few seconds: the
// built-in fleet's readings land in readings/, known to the registry (no unknown_sensor flag).
func TestRunSimulate(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, []string{"SLUICE_LAKE_FLUSH_INTERVAL=250ms", "SLUICE_SIMULATE_INTERVAL=100ms"}, "--simulate")
	testkit.Eventually(t, 30*time.Second, func() bool { return metric(t, p.HTTP, `sluice_stage_records_total{stage="decoder"}`) >= 50 },
		"the simulator's messages did not reach the decoder:\n%s", p.Logs())
	p.stop(t, 30*time.Second)
	lake := filepath.Join(dir, "lake")
	db := duck(t)
	readings := tableSQL(t, lake, "readings")
	if readings == "" {
		t.Fatalf("no readings committed:\n%s", p.Logs())
	}
	var n, sensors, flagged int64
	if err := db.QueryRow("SELECT count(*), count(DISTINCT sensor_id), count(*) FILTER (WHERE len(flags) > 0) FROM "+readings).Scan(&n, &sensors, &flagged); err != nil {
		t.Fatal(err)
	}
	if n < 50 || sensors != 5 || flagged != 0 {
		t.Fatalf("readings: %d rows from %d sensors, %d flagged; want ≥ 50 from the 5 built-in sensors, none flagged", n, sensors, flagged)
	}
	if got := queryInt(t, db, "SELECT count(*) FROM "+tableSQL(t, lake, "sensors")+" WHERE origin = 'builtin' AND sensor_count = 5"); got != 1 {
		t.Fatalf("sensors/ holds %d versions of the built-in registry, want 1", got)
	}
}
