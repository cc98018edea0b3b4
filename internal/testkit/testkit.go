// Package testkit holds what tests across sluice share, in one copy: polling with deadlines, free ports,
// a private Mosquitto broker, a throwaway PKI, temporary lakes. It is imported by _test.go files, e2e/
// and the bench commands (bench/: they return errors, so each helper that fails a test has a form
// that returns an error instead), never by production code.
package testkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Poll calls cond every interval until it returns true, or returns an error naming what after timeout.
func Poll(timeout, interval time.Duration, cond func() bool, what string) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %s", what, timeout)
		}
		time.Sleep(interval)
	}
	return nil
}

// Eventually polls cond every 10ms until it returns true, failing the test with msg after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	if Poll(timeout, 10*time.Millisecond, cond, "") != nil {
		t.Fatalf("after %s: "+msg, append([]any{timeout}, args...)...)
	}
}

// PickPort returns a TCP port on 127.0.0.1 that was free a moment ago. Prefer listening on :0 where
// the server allows it; this is for servers that must be told a port (Mosquitto, a subprocess).
func PickPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePort is PickPort, failing the test on error.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return port
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

// Listening waits until something accepts TCP connections on addr, or returns an error after timeout.
func Listening(addr string, timeout time.Duration) error {
	return Poll(timeout, 10*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		return false
	}, "listener on "+addr)
}

// WaitListening is Listening, failing the test on error.
func WaitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	if err := Listening(addr, timeout); err != nil {
		t.Fatal(err)
	}
}

// FindRepoRoot returns the repository root: the nearest directory holding go.mod, from the working
// directory up.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("repo root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repo root: no go.mod above the working directory")
		}
		dir = parent
	}
}

// RepoRoot is FindRepoRoot, failing the test on error (tests use it for fixtures).
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}
