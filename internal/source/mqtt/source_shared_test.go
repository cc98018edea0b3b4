package mqtt

import (
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/log/memlog"
	"github.com/sluice-project/sluice/internal/testkit"
)

// TestSharedSubscription runs two sources in one shared group: every message lands in exactly one of
// them, and both get a share.
func TestSharedSubscription(t *testing.T) {
	const n = 400
	for _, b := range brokers {
		for _, proto := range protocols {
			t.Run(b.name+"/v"+proto, func(t *testing.T) {
				url := b.start(t)
				var logs [2]*memlog.Log
				var rs [2]*running
				for i, id := range []string{"sluice-a", "sluice-b"} {
					cfg := testConfig(url, id, proto)
					cfg.SharedGroup = "sluice"
					logs[i] = memlog.New()
					rs[i] = startSource(t, cfg, logs[i])
				}
				for _, r := range rs {
					r.waitReady(t)
				}
				ms := messages("shared", n)
				newPublisher(t, url, "pub-shared", nil, "", "").publish(t, 1, ms)
				testkit.Eventually(t, 20*time.Second, func() bool { return logs[0].Next()+logs[1].Next() >= n },
					"the group took in %d + %d of %d messages", logs[0].Next(), logs[1].Next(), n)
				a, b := payloadSet(t, logs[0]), payloadSet(t, logs[1])
				if len(a) == 0 || len(b) == 0 {
					t.Fatalf("one member got nothing: %d and %d messages", len(a), len(b))
				}
				for p, c := range a {
					if c != 1 || b[p] != 0 {
						t.Fatalf("payload %s: %d times in member a, %d in member b, want exactly once in all", p, c, b[p])
					}
				}
				for p, c := range b {
					if c != 1 {
						t.Fatalf("payload %s: %d times in member b", p, c)
					}
				}
				if got := len(a) + len(b); got != n {
					t.Fatalf("the group holds %d distinct messages, want %d", got, n)
				}
				for _, m := range ms {
					if a[m.payload]+b[m.payload] != 1 {
						t.Fatalf("payload %s is missing", m.payload)
					}
				}
				if got := int64(len(a)+len(b)) - (logs[0].Next() + logs[1].Next()); got != 0 {
					t.Fatalf("%d duplicates", -got)
				}
			})
		}
	}
}
