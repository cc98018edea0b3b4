package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/sluice-project/sluice/internal/testkit"
)

var sluiceBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sluice-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", sluiceBin, "../cmd/sluice")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build sluice:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one running sluice.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	MQTT   string // host:port of the embedded broker ("" with an external one)
	HTTP   string // host:port
	mu     sync.Mutex
	logs   strings.Builder
	exited chan struct{}
	err    error
}

// start runs `sluice run --data-dir dir --log-format json --http 127.0.0.1:0` plus args, with env
// added to the environment, and waits for the ready line.
func start(t testing.TB, dir string, env []string, args ...string) *proc {
	t.Helper()
	full := append([]string{"run", "--data-dir", dir, "--log-format", "json", "--http", "127.0.0.1:0"}, args...)
	if !slices.Contains(args, "--mqtt-listen") && !slices.Contains(args, "--broker") {
		full = append(full, "--mqtt-listen", "127.0.0.1:0")
	}
	p := &proc{t: t, cmd: exec.Command(sluiceBin, full...), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan map[string]any, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "sluice ready" {
				ready <- m
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.saveLogs(t)
		}
	})
	select {
	case m := <-ready:
		p.MQTT, _ = m["mqtt"].(string)
		p.HTTP, _ = m["http"].(string)
	case <-p.exited:
		t.Fatalf("sluice exited before ready (%v):\n%s", p.err, p.Logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice not ready after 60s:\n%s", p.Logs())
	}
	return p
}

// Logs returns everything sluice wrote to stderr so far.
func (p *proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// waitReady waits until /readyz says sluice takes messages: with an external broker, until its
// subscription exists (the broker drops what is published to a topic nobody has subscribed to yet).
func (p *proc) waitReady(t testing.TB) {
	t.Helper()
	testkit.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + p.HTTP + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "sluice not ready:\n%s", p.Logs())
}

// saveLogs writes what this sluice logged to a file for the failed test's reader (every process of
// a crash test, not only the last).
func (p *proc) saveLogs(t testing.TB) {
	f, err := os.CreateTemp("", "sluice-e2e-*.log")
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "# %s: sluice %v\n", t.Name(), p.cmd.Args)
	f.WriteString(p.Logs())
	t.Logf("logs of sluice pid %d: %s", p.cmd.Process.Pid, f.Name())
}

// kill SIGKILLs sluice and waits for it.
func (p *proc) kill() {
	if p.cmd.Process == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM and requires a clean exit (status 0) within the timeout.
func (p *proc) stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	if !testkit.StopProcess(p.cmd.Process, p.exited, syscall.SIGTERM, timeout) {
		t.Fatalf("sluice did not stop within %s after SIGTERM:\n%s", timeout, p.Logs())
	}
	if p.err != nil {
		t.Fatalf("sluice exited with %v after SIGTERM:\n%s", p.err, p.Logs())
	}
}

// publisher is an at-least-once MQTT publisher: a persistent session, QoS 1, and every message
// retried until its PUBACK arrives, across broker restarts and sluice crashes.
type publisher struct {
	c     paho.Client
	store *countingStore
}

// countingStore is paho's memory store, counting the outgoing messages it holds: paho keeps a QoS 1
// message there until its PUBACK arrives, and completes the message's token early when it resends it
// after a reconnect, so the store, not the token, says whether the broker acknowledged everything.
type countingStore struct {
	*paho.MemoryStore
	mu  sync.Mutex
	out map[string]bool
}

func (s *countingStore) Put(key string, m packets.ControlPacket) {
	s.MemoryStore.Put(key, m)
	if strings.HasPrefix(key, "o.") {
		s.mu.Lock()
		s.out[key] = true
		s.mu.Unlock()
	}
}

func (s *countingStore) Del(key string) {
	s.MemoryStore.Del(key)
	s.mu.Lock()
	delete(s.out, key)
	s.mu.Unlock()
}

// Unacked returns how many outgoing messages await their PUBACK.
func (s *countingStore) Unacked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.out)
}

func newPublisher(t testing.TB, brokerURL, clientID string) *publisher {
	t.Helper()
	store := &countingStore{MemoryStore: paho.NewMemoryStore(), out: map[string]bool{}}
	opts := paho.NewClientOptions().AddBroker(brokerURL).SetClientID(clientID).
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(500 * time.Millisecond).
		SetWriteTimeout(5 * time.Second).SetOrderMatters(false).SetStore(store)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", brokerURL, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return &publisher{c: c, store: store}
}

// publish sends one message at QoS 1 and retries until it is acknowledged or the deadline passes.
func (p *publisher) publish(topic string, payload []byte, deadline time.Time) error {
	for {
		tok := p.c.Publish(topic, 1, false, payload)
		if tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish %s: not acknowledged by %s (last error: %v)", topic, deadline.Format(time.TimeOnly), tok.Error())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// settle waits until the broker has acknowledged every message the publisher stored.
func (p *publisher) settle(t testing.TB, timeout time.Duration) {
	t.Helper()
	testkit.Eventually(t, timeout, func() bool { return p.store.Unacked() == 0 }, "%d messages still unacknowledged", p.store.Unacked())
}

// lakeTable lists the live data files of a Delta table by reading its _delta_log JSON commits
// directly: an independent reader of what sluice committed.
func lakeTable(t testing.TB, lakeDir, table string) []string {
	t.Helper()
	logDir := filepath.Join(lakeDir, table, "_delta_log")
	entries, err := os.ReadDir(logDir)
	if err != nil {
		t.Fatalf("read %s: %v", logDir, err)
	}
	live := map[string]bool{}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		f, err := os.Open(filepath.Join(logDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var a struct {
				Add    *struct{ Path string } `json:"add"`
				Remove *struct{ Path string } `json:"remove"`
			}
			if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			if a.Add != nil {
				live[a.Add.Path] = true
			}
			if a.Remove != nil {
				delete(live, a.Remove.Path)
			}
		}
		f.Close()
	}
	var files []string
	for p := range live {
		u, err := url.PathUnescape(p)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(lakeDir, table, u))
	}
	slices.Sort(files)
	return files
}

// duck opens an in-memory DuckDB.
func duck(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// tableSQL returns a read_parquet over the table's committed files (” when it has none).
func tableSQL(t testing.TB, lakeDir, table string) string {
	files := lakeTable(t, lakeDir, table)
	if len(files) == 0 {
		return ""
	}
	quoted := make([]string, len(files))
	for i, f := range files {
		quoted[i] = "'" + strings.ReplaceAll(f, "'", "''") + "'"
	}
	return fmt.Sprintf("read_parquet([%s], hive_partitioning=true)", strings.Join(quoted, ","))
}

func queryInt(t testing.TB, db *sql.DB, q string) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
