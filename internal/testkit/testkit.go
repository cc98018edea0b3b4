// Package testkit holds what tests across sluice share, in one copy: polling with deadlines, free ports,
// a private Mosquitto broker, temporary data directories. It is imported only by _test.go files and
// e2e/, never by production code.
package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Eventually polls cond every 10ms until it returns true, failing the test with msg after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: "+msg, append([]any{timeout}, args...)...)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer listening on :0 where the
// server allows it; this is for servers that must be told a port (Mosquitto, a subprocess).
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// MosquittoPath returns the mosquitto binary, or "" when it is not installed.
func MosquittoPath() string {
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	p, _ := exec.LookPath("mosquitto")
	return p
}

// Mosquitto is a private Mosquitto broker started for one test.
type Mosquitto struct {
	Addr string // host:port
	URL  string // mqtt://host:port
	Cmd  *exec.Cmd
	conf string
}

// StartMosquitto starts a private Mosquitto on a free port with extra config lines appended (for
// example "max_inflight_messages 100"), and stops it when the test ends. It skips the test when
// Mosquitto is not installed: tests that must run everywhere use the embedded broker instead.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	bin := MosquittoPath()
	if bin == "" {
		t.Skip("mosquitto is not installed; the embedded-broker tests cover this path")
	}
	dir := t.TempDir()
	port := FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	lines := append([]string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"allow_anonymous true",
		"persistence true",
		"persistence_location " + dir + "/",
		"max_queued_messages 1000000",
		"log_dest stderr",
		"log_type error",
	}, extra...)
	if os.Geteuid() == 0 {
		// As root, Mosquitto drops to user "mosquitto", which cannot write the test's persistence directory:
		// persistent sessions would then not survive Restart.
		lines = append(lines, "user root")
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Mosquitto{Addr: fmt.Sprintf("127.0.0.1:%d", port), URL: fmt.Sprintf("mqtt://127.0.0.1:%d", port), conf: conf}
	m.start(t, bin)
	t.Cleanup(m.Stop)
	return m
}

func (m *Mosquitto) start(t testing.TB, bin string) {
	t.Helper()
	m.Cmd = exec.Command(bin, "-c", m.conf)
	m.Cmd.Stderr = os.Stderr
	if err := m.Cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	WaitListening(t, m.Addr, 10*time.Second)
}

// Stop stops the broker (SIGTERM, so it saves its persistent sessions) and waits for it.
func (m *Mosquitto) Stop() {
	if m.Cmd == nil || m.Cmd.Process == nil {
		return
	}
	_ = m.Cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = m.Cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = m.Cmd.Process.Kill()
		<-done
	}
	m.Cmd = nil
}

// Restart stops the broker and starts it again on the same port and persistence directory.
func (m *Mosquitto) Restart(t testing.TB) {
	t.Helper()
	m.Stop()
	m.start(t, MosquittoPath())
}

// WaitListening waits until something accepts TCP connections on addr.
func WaitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		return false
	}, "nothing listens on %s", addr)
}

// RepoRoot returns the repository root (the directory holding go.mod), for tests that need fixtures.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test's directory")
		}
		dir = parent
	}
}
