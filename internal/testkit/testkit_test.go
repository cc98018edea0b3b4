package testkit

import (
	"strings"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	if err := Poll(time.Second, time.Millisecond, func() bool { calls++; return calls == 3 }, "three calls"); err != nil || calls != 3 {
		t.Fatalf("Poll = %v after %d calls, want nil after 3", err, calls)
	}
	err := Poll(20*time.Millisecond, time.Millisecond, func() bool { return false }, "never")
	if err == nil || !strings.Contains(err.Error(), "never: not done after 20ms") {
		t.Fatalf("Poll = %v, want the what and the timeout named", err)
	}
}

func TestMosquittoRestartKeepsPort(t *testing.T) {
	if MosquittoPath() == "" {
		t.Skip("mosquitto is not installed")
	}
	m, err := RunMosquitto(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	addr := m.Addr
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	if m.Addr != addr {
		t.Fatalf("address moved from %s to %s", addr, m.Addr)
	}
	if err := Listening(m.Addr, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	if m.CPU() <= 0 {
		t.Fatalf("CPU after two runs = %s", m.CPU())
	}
}
