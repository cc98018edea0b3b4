package harness

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/sluice-project/sluice/internal/broker"
	"github.com/sluice-project/sluice/internal/testkit"
)

// MochiEnv is the environment variable that turns a bench or chaos binary into a bare mochi broker
// (see MaybeServeMochi): the ceiling of the embedded broker runs in its own process, as Mosquitto does.
const MochiEnv = "SLUICE_BENCH_SERVE_MOCHI"

// MaybeServeMochi serves a bare mochi-mqtt broker and exits the process when MochiEnv is set; call it
// first thing in main (and TestMain). The broker is configured as sluice's embedded one (its default
// receive maximum, anonymous) but without its ingest hook: it routes messages and nothing else. It
// listens on 127.0.0.1:0, prints "listening <addr>" on stdout and stops on SIGTERM or when stdin
// closes.
func MaybeServeMochi() {
	if os.Getenv(MochiEnv) == "" {
		return
	}
	if err := serveMochi(); err != nil {
		fmt.Fprintln(os.Stderr, "mochi:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func serveMochi() error {
	caps := mqtt.NewDefaultServerCapabilities()
	caps.ReceiveMaximum = uint16(broker.DefaultConfig().ReceiveMaximum)
	// As long a queue per subscriber as mochi allows (Mosquitto gets max_queued_messages 1000000): the
	// ceiling is what a subscriber receives, not what a full queue drops.
	caps.MaximumInflight = math.MaxUint16
	caps.MaximumClientWritesPending = math.MaxUint16
	srv := mqtt.New(&mqtt.Options{Capabilities: caps, Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(allowHook), nil); err != nil {
		return err
	}
	port, err := testkit.PickPort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := srv.AddListener(listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})); err != nil {
		return err
	}
	if err := srv.Serve(); err != nil {
		return err
	}
	fmt.Printf("listening %s\n", addr)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-stop:
	case <-eof:
	}
	return srv.Close()
}

// Mochi is a bare mochi broker running in a child process.
type Mochi struct {
	Addr string
	URL  string
	cmd  *exec.Cmd
	in   io.WriteCloser
	done chan struct{}
	cpu  time.Duration
}

// StartMochi starts this executable (which must call MaybeServeMochi) as a bare mochi broker.
func StartMochi() (*Mochi, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start mochi: %w", err)
	}
	m := &Mochi{cmd: exec.Command(exe), done: make(chan struct{})}
	m.cmd.Env = append(os.Environ(), MochiEnv+"=1")
	m.cmd.Stderr = os.Stderr
	if m.in, err = m.cmd.StdinPipe(); err != nil {
		return nil, fmt.Errorf("start mochi: %w", err)
	}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start mochi: %w", err)
	}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start mochi: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- sc.Text()
		}
		io.Copy(io.Discard, out)
		m.cmd.Wait()
		m.cpu = m.cmd.ProcessState.UserTime() + m.cmd.ProcessState.SystemTime()
		close(m.done)
	}()
	select {
	case l := <-line:
		addr, ok := strings.CutPrefix(l, "listening ")
		if !ok {
			m.Stop()
			return nil, fmt.Errorf("start mochi: unexpected first line %q", l)
		}
		m.Addr, m.URL = addr, "mqtt://"+addr
		return m, nil
	case <-m.done:
		return nil, fmt.Errorf("start mochi: exited before listening")
	case <-time.After(30 * time.Second):
		m.Stop()
		return nil, fmt.Errorf("start mochi: not listening after 30s")
	}
}

// CPU returns the CPU time (user + system) the broker used; valid after Stop.
func (m *Mochi) CPU() time.Duration { return m.cpu }

// Stop stops the broker and waits for it.
func (m *Mochi) Stop() {
	m.in.Close()
	testkit.StopProcess(m.cmd.Process, m.done, syscall.SIGTERM, 10*time.Second)
}

// allowHook lets every client connect, publish and subscribe, as the embedded broker does when no
// username is configured (mochi's own AllowHook package pulls in an unmaintained YAML module).
type allowHook struct{ mqtt.HookBase }

func (h *allowHook) ID() string { return "allow-all" }

func (h *allowHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *allowHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

func (h *allowHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
