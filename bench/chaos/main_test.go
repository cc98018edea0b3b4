package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/bench/internal/harness"
	"github.com/sluice-project/sluice/internal/testkit"
)

// testBin is the sluice binary, built once for every scenario.
var testBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		ws, err := harness.NewWorkspace("chaos-test", false, os.Stderr)
		if err == nil {
			defer ws.Close()
			err = ws.Build(context.Background())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		testBin = ws.Bin
		return m.Run()
	}())
}

func quickEnv(t *testing.T) *env {
	return &env{bin: testBin, work: t.TempDir(), quick: true, say: func(format string, args ...any) { t.Logf(format, args...) }}
}

// requirePass fails the test unless r passed and its counts add up exactly: every message sent was
// acknowledged and found in the lake once.
func requirePass(t *testing.T, r *Result) {
	t.Helper()
	if !r.Pass() || r.Sent == 0 || r.Acked != r.Sent || r.InLake != r.Acked || r.Lost != 0 || r.Duplicates != 0 {
		t.Fatalf("scenario %s:\n%s", r.Scenario, table([]*Result{r}))
	}
}

// The short scenarios: the same code as `go run ./bench/chaos`, a few kills and thousands of messages.

func TestSigkillEmbedded(t *testing.T) {
	requirePass(t, sigkill(context.Background(), quickEnv(t), false))
}

func TestSigkillMosquitto(t *testing.T) {
	if testkit.MosquittoPath() == "" {
		t.Skip("mosquitto is not installed")
	}
	requirePass(t, sigkill(context.Background(), quickEnv(t), true))
}

func TestRestartMosquitto(t *testing.T) {
	if testkit.MosquittoPath() == "" {
		t.Skip("mosquitto is not installed")
	}
	requirePass(t, restartMosquitto(context.Background(), quickEnv(t)))
}

func TestRestartEmbedded(t *testing.T) {
	requirePass(t, restartEmbedded(context.Background(), quickEnv(t)))
}

func TestDiskFull(t *testing.T) { requirePass(t, diskFull(context.Background(), quickEnv(t))) }

func TestHostile(t *testing.T) {
	r := hostile(context.Background(), quickEnv(t))
	requirePass(t, r)
	if r.Sent != 3200 {
		t.Fatalf("sent %d, want 3200", r.Sent)
	}
}

func TestResultPass(t *testing.T) {
	ok := func() *Result { return &Result{Scenario: "s", Sent: 10, Acked: 10, InLake: 10} }
	cases := []struct {
		name string
		mod  func(*Result)
		want bool
		inMD string
	}{
		{"all counted", func(*Result) {}, true, "| s |  | 10 | 10 | 10 | 0 | 0 | 0 | 0 | 0s | pass |"},
		{"one lost", func(r *Result) { r.Lost, r.InLake = 1, 9 }, false, "| 9 | 0 | 0 | 1 | 0 | 0s | FAIL |"},
		{"one duplicate", func(r *Result) { r.Duplicates = 1 }, false, "| 0 | 1 | 0 | 0 | 0s | FAIL |"},
		{"a wrong value", func(r *Result) { r.WrongValues = 1 }, false, "| 0 | 0 | 0 | 1 | 0s | FAIL |"},
		{"a failed check", func(r *Result) { r.Check(false, "PUBACKs stopped", "%d acks", 3) }, false, "- FAILED: PUBACKs stopped — 3 acks"},
		{"a passed check", func(r *Result) { r.Check(true, "resumed", "after %s", time.Second) }, true, "- ok: resumed — after 1s"},
		{"did not complete", func(r *Result) { r.Err = errors.New("broker gone\nfor good") }, false, "did not complete: broker gone ⏎ for good"},
		{"unacknowledged in lake is allowed", func(r *Result) { r.Unacked = 3 }, true, "| 10 | 3 | 0 | 0 | 0 | 0s | pass |"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ok()
			c.mod(r)
			if r.Pass() != c.want {
				t.Fatalf("Pass = %v, want %v", r.Pass(), c.want)
			}
			if md := table([]*Result{r}); !strings.Contains(md, c.inMD) {
				t.Fatalf("table lacks %q:\n%s", c.inMD, md)
			}
		})
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-only", "meteor"}, &out, &errOut); code != 2 {
		t.Fatalf("exit code %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown scenario "meteor"`) {
		t.Fatalf("stderr: %s", errOut.String())
	}
}

func TestLogLines(t *testing.T) {
	logs := "a b c\nb c\n\nc a\n"
	cases := []struct {
		words []string
		want  int
	}{{[]string{"a"}, 2}, {[]string{"a", "b"}, 1}, {[]string{"z"}, 0}, {nil, 3}}
	for _, c := range cases {
		if got := logLines(logs, c.words...); len(got) != c.want {
			t.Errorf("logLines(%v) = %q, want %d lines", c.words, got, c.want)
		}
	}
}
