package testkit

import (
	"bufio"
	"os/exec"
	"strings"
	"syscall"
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

// TestStopProcess: a process that honours the signal exits in time; one that ignores it is killed
// after the timeout, and both have been waited for when StopProcess returns.
func TestStopProcess(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		inTime bool
	}{
		{"honours SIGTERM", "exec sleep 30", true},
		{"ignores SIGTERM", `trap "" TERM; echo ready; exec sleep 30` /* an ignored signal stays ignored across exec */, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tc.script)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if !tc.inTime { // the trap must be set before the signal comes
				if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
					t.Fatal(err)
				}
			}
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			if got := StopProcess(cmd.Process, exited, syscall.SIGTERM, 300*time.Millisecond); got != tc.inTime {
				t.Fatalf("StopProcess = %v, want %v", got, tc.inTime)
			}
			select {
			case <-exited:
			default:
				t.Fatal("StopProcess returned before the process was waited for")
			}
		})
	}
}
