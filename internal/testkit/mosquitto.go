package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Mosquitto is a private Mosquitto broker with its persistence, configuration and log in its own
// directory.
type Mosquitto struct {
	Addr string // 127.0.0.1:port
	URL  string // mqtt://127.0.0.1:port
	bin  string
	conf string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	cpu  time.Duration // user + system time of the processes that have exited
}

// RunMosquitto starts Mosquitto on a free port, with its persistence, configuration and log
// (mosquitto.log) in dir and the extra configuration lines given (e.g. "max_inflight_messages 1000").
func RunMosquitto(dir string, extra ...string) (*Mosquitto, error) {
	bin := MosquittoPath()
	if bin == "" {
		return nil, fmt.Errorf("start mosquitto: not installed")
	}
	port, err := PickPort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	lines := append([]string{
		fmt.Sprintf("listener %d 127.0.0.1", port),
		"allow_anonymous true",
		"persistence true",
		"persistence_location " + dir + "/",
		"max_queued_messages 1000000",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
	}, extra...)
	if os.Geteuid() == 0 {
		// As root Mosquitto drops to user "mosquitto", which cannot write dir: sessions would not survive
		// a restart.
		lines = append(lines, "user root")
	}
	m := &Mosquitto{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), URL: fmt.Sprintf("mqtt://127.0.0.1:%d", port),
		bin: bin, conf: filepath.Join(dir, "mosquitto.conf"), log: filepath.Join(dir, "mosquitto.log"),
	}
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("start mosquitto: %w", err)
	}
	if err := m.start(); err != nil {
		return nil, err
	}
	return m, nil
}

// StartMosquitto is RunMosquitto in a temporary directory of t, stopped when the test ends. It skips
// the test when Mosquitto is not installed: tests that must run everywhere use the embedded broker.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	if MosquittoPath() == "" {
		t.Skip("mosquitto is not installed; the embedded-broker tests cover this path")
	}
	m, err := RunMosquitto(t.TempDir(), extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Stop)
	return m
}

func (m *Mosquitto) start() error {
	f, err := os.OpenFile(m.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.cmd.Stderr, m.cmd.Stdout = f, f
	if err := m.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start mosquitto: %w", err)
	}
	m.done = make(chan struct{})
	cmd := m.cmd
	go func() {
		cmd.Wait()
		f.Close()
		m.cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		close(m.done)
	}()
	if err := Listening(m.Addr, 10*time.Second); err != nil {
		m.Stop()
		return fmt.Errorf("start mosquitto: %w (its log: %s)", err, m.log)
	}
	return nil
}

// Stop stops the broker with SIGINT (it saves its persistent sessions and queued messages) and waits,
// killing it after 10s.
func (m *Mosquitto) Stop() {
	if m.cmd == nil {
		return
	}
	StopProcess(m.cmd.Process, m.done, os.Interrupt, 10*time.Second)
	m.cmd = nil
}

// CPU returns the CPU time (user + system) the broker used, counted for the runs that have stopped.
func (m *Mosquitto) CPU() time.Duration { return m.cpu }

// Restart stops the broker and starts it again on the same port and persistence directory.
func (m *Mosquitto) Restart() error {
	m.Stop()
	return m.start()
}
