package broker

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt3 "github.com/eclipse/paho.mqtt.golang"

	"github.com/sluice-project/sluice/internal/log/memlog"
)

func TestMochiLog(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
		Level:       slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return dropTime(a) },
	}))
	l := newMochiLogger(base, nil).With("pk", "withattrs-payload", "listener", "tcp")
	l.Info("attached listener", "id", "tcp")
	l.Warn("error processing packet", "error", "EOF", "pk", "PAYLOAD")
	l.Warn("", "error", "tls: bad certificate")
	l.Error("failed to serve.", "packet", "PAYLOAD")
	l.Debug("client disconnected")
	want := strings.Join([]string{
		`level=DEBUG msg="attached listener" mqtt=mochi listener=tcp id=tcp`,
		`level=INFO msg="error processing packet" mqtt=mochi listener=tcp error=EOF`,
		`level=INFO msg="client connection ended" mqtt=mochi listener=tcp error="tls: bad certificate"`,
		`level=ERROR msg="failed to serve." mqtt=mochi listener=tcp`,
		`level=DEBUG msg="client disconnected" mqtt=mochi listener=tcp`,
	}, "\n") + "\n"
	if buf.String() != want {
		t.Fatalf("mochi log:\n%s\nwant:\n%s", buf.String(), want)
	}

	buf.Reset()
	info := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ml := newMochiLogger(info, nil)
	ml.Info("mochi mqtt starting")
	if buf.Len() != 0 {
		t.Fatalf("mochi's Info reached an Info logger: %s", buf.String())
	}

	// A message dropped for a full subscriber queue is mochi's Warn, one a message: it goes to the
	// callback, not the log.
	var dropped []string
	dl := newMochiLogger(info, func(client string) { dropped = append(dropped, client) }).With("listener", "tcp")
	dl.Warn("client store quota reached", "client", "sub-1", "listener", "tcp")
	dl.Warn("packet ids exhausted", "error", "no ids", "client", "sub-2")
	dl.Warn("error processing packet", "error", "EOF")
	if !slices.Equal(dropped, []string{"sub-1", "sub-2"}) {
		t.Fatalf("drop callback got %q, want [sub-1 sub-2]", dropped)
	}
	if got := buf.String(); strings.Contains(got, "quota") || strings.Contains(got, "exhausted") || !strings.Contains(got, "error processing packet") {
		t.Fatalf("log after drops:\n%s\nwant only the other Warn", got)
	}
}

func dropTime(a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestNoStdout runs a broker's whole life, with clients, and checks nothing was written to stdout
// (mochi's default logger writes there).
func TestNoStdout(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stdout
	os.Stdout = w
	out := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); out <- b }()
	func() {
		defer func() { os.Stdout = orig }()
		logs := &lockedBuffer{}
		b, err := New(testConfig(), memlog.New(), slog.New(slog.NewTextHandler(logs, nil)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		c := mqtt3.NewClient(mqtt3.NewClientOptions().AddBroker("tcp://" + b.Addr().String()).SetClientID("quiet"))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		if tok := c.Publish("plant/q", 1, false, []byte("x")); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		c.Disconnect(50)
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "embedded MQTT broker listening") {
			t.Fatalf("sluice's logger got %q", logs.String())
		}
	}()
	w.Close()
	if b := <-out; len(b) != 0 {
		t.Fatalf("stdout got %q", b)
	}
}

// lockedBuffer is a bytes.Buffer for loggers written from several goroutines (mochi's connection
// goroutines may log just after Close returns).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
