package simulate

import (
	"bufio"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// broker is an embedded mochi broker on 127.0.0.1:0 whose in-process subscriber records every
// message published to it.
type broker struct {
	URL    string
	server *mqtt.Server

	mu   sync.Mutex
	msgs []received
}

type received struct {
	topic   string
	payload []byte
	dup     bool
}

// allowAll lets every client connect and publish (mochi's auth.AllowHook package pulls in
// gopkg.in/yaml.v3, which go.sum does not hold).
type allowAll struct{ mqtt.HookBase }

func (allowAll) ID() string { return "allow-all" }
func (allowAll) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}
func (allowAll) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }
func (allowAll) OnACLCheck(*mqtt.Client, string, bool) bool              { return true }

func startBroker(t testing.TB, extra ...listeners.Listener) *broker {
	t.Helper()
	b := &broker{server: mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.DiscardHandler)})}
	if err := b.server.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	tcp := listeners.NewTCP(listeners.Config{ID: "tcp", Address: "127.0.0.1:0"})
	for _, l := range append([]listeners.Listener{tcp}, extra...) {
		if err := b.server.AddListener(l); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.server.Subscribe("#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		if strings.HasPrefix(pk.TopicName, "$") {
			return // mochi's $SYS topics
		}
		b.mu.Lock()
		b.msgs = append(b.msgs, received{topic: pk.TopicName, payload: append([]byte(nil), pk.Payload...), dup: pk.FixedHeader.Dup})
		b.mu.Unlock()
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.server.Serve(); err != nil {
		t.Fatal(err)
	}
	b.URL = "mqtt://" + tcp.Address()
	t.Cleanup(func() { b.server.Close() })
	return b
}

func (b *broker) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.msgs)
}

func (b *broker) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

// readTruth reads a truth file.
func readTruth(t testing.TB, path string) []truthLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []truthLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l truthLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("truth line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

type truthLine struct {
	Seq      int64    `json:"seq"`
	SensorID string   `json:"sensor_id"`
	Metric   string   `json:"metric"`
	TS       string   `json:"ts"`
	Value    *float64 `json:"value"`
	Fault    string   `json:"fault"`
	Kind     string   `json:"kind"`
	Missed   int      `json:"missed"`
	DupOf    int64    `json:"dup_of"`
	Topic    string   `json:"topic"`
}
