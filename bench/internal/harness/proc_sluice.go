package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

// ReadyMessage is the log line sluice writes once it takes messages (app.ReadyMessage).
const ReadyMessage = "sluice ready"

// maxLog bounds the log a Proc keeps in memory (the file given in Options.LogFile gets all of it).
const maxLog = 8 << 20

// Build builds ./cmd/sluice of the repository at root into dir and returns the binary's path.
func Build(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "sluice")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build sluice: %w\n%s", err, out)
	}
	return bin, nil
}

// Options says how to start sluice.
type Options struct {
	Bin     string   // the binary (Build)
	DataDir string   // --data-dir
	Args    []string // more arguments after `run`: --broker URL, --mqtt-listen ADDR (default 127.0.0.1:0), …
	Env     []string // added to the environment: SLUICE_* settings
	LogFile string   // when set, every log line is appended there too
	// ReadyTimeout bounds the wait for the ready line (default 60s).
	ReadyTimeout time.Duration
}

// Proc is one running sluice.
type Proc struct {
	MQTT string // host:port of the embedded broker ("" with an external broker)
	HTTP string // host:port of the HTTP listener
	Pid  int

	cmd    *exec.Cmd
	exited chan struct{}
	mu     sync.Mutex
	logs   []byte
	err    error // cmd.Wait's, valid once exited is closed
}

// Start runs `sluice run --data-dir D --log-format json --http 127.0.0.1:0` with opts.Args and
// waits for its ready line. On error the process is killed.
func Start(opts Options) (*Proc, error) {
	args := []string{"run", "--data-dir", opts.DataDir, "--log-format", "json", "--http", "127.0.0.1:0"}
	args = append(args, opts.Args...)
	if !slices.Contains(opts.Args, "--broker") && !slices.Contains(opts.Args, "--mqtt-listen") {
		args = append(args, "--mqtt-listen", "127.0.0.1:0")
	}
	p := &Proc{cmd: exec.Command(opts.Bin, args...), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), opts.Env...)
	p.cmd.Stdout = io.Discard
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("start sluice: %w", err)
	}
	var logFile *os.File
	if opts.LogFile != "" {
		if logFile, err = os.OpenFile(opts.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err != nil {
			return nil, fmt.Errorf("start sluice: %w", err)
		}
	}
	if err := p.cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("start sluice: %w", err)
	}
	p.Pid = p.cmd.Process.Pid
	ready := make(chan map[string]any, 1)
	go func() {
		sent := false
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			if len(p.logs) < maxLog {
				p.logs = append(append(p.logs, line...), '\n')
			}
			p.mu.Unlock()
			if logFile != nil {
				logFile.Write(line)
				logFile.Write([]byte{'\n'})
			}
			if !sent && strings.Contains(string(line), ReadyMessage) {
				var m map[string]any
				if json.Unmarshal(line, &m) == nil && m["msg"] == ReadyMessage {
					ready <- m
					sent = true
				}
			}
		}
		io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		if logFile != nil {
			logFile.Close()
		}
		close(p.exited)
	}()
	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	select {
	case m := <-ready:
		p.MQTT, _ = m["mqtt"].(string)
		p.HTTP, _ = m["http"].(string)
		return p, nil
	case <-p.exited:
		return nil, fmt.Errorf("sluice exited before it was ready (%v):\n%s", p.err, p.tail(4000))
	case <-time.After(timeout):
		p.Kill()
		return nil, fmt.Errorf("sluice not ready after %s:\n%s", timeout, p.tail(4000))
	}
}

// Logs returns what sluice wrote to stderr so far (the first 8 MiB).
func (p *Proc) Logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.logs)
}

func (p *Proc) tail(n int) string {
	l := p.Logs()
	if len(l) > n {
		l = "…" + l[len(l)-n:]
	}
	return l
}

// Exited is closed once the process has exited.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop sends SIGTERM and waits up to timeout for a clean exit (status 0); past it the process is
// killed and an error returned.
func (p *Proc) Stop(timeout time.Duration) error {
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("sluice had already exited: %w", p.err)
		}
		return nil
	default:
	}
	if !testkit.StopProcess(p.cmd.Process, p.exited, syscall.SIGTERM, timeout) {
		return fmt.Errorf("sluice did not stop within %s of SIGTERM:\n%s", timeout, p.tail(4000))
	}
	if p.err != nil {
		return fmt.Errorf("sluice exited with %w after SIGTERM:\n%s", p.err, p.tail(4000))
	}
	return nil
}

// Metrics scrapes /metrics.
func (p *Proc) Metrics(ctx context.Context) (Metrics, error) {
	return Scrape(ctx, "http://"+p.HTTP+"/metrics")
}

// Ready reports whether /readyz answers 200 (for an external broker: connected and subscribed).
func (p *Proc) Ready(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.HTTP+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitReady polls /readyz until it answers 200, up to timeout.
func (p *Proc) WaitReady(timeout time.Duration) error {
	return testkit.Poll(timeout, 20*time.Millisecond, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return p.Ready(ctx)
	}, "sluice /readyz")
}

// PeakRSS returns the process's peak resident set size in bytes (VmHWM), while it runs.
func (p *Proc) PeakRSS() (int64, error) {
	return PeakRSS(p.Pid)
}

// CPUNow returns the CPU time (user + system) the process has used so far, while it runs.
func (p *Proc) CPUNow() (time.Duration, error) {
	return ProcessCPU(p.Pid)
}

// CPU returns the CPU time (user + system) the process used; valid once it has exited.
func (p *Proc) CPU() time.Duration {
	select {
	case <-p.exited:
		return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
	default:
		return 0
	}
}

// SelfCPU returns the CPU time (user + system) the calling process has used so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
