package app

import (
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-project/sluice/internal/config"
)

func TestRuntimeMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "") // the test process's own limit must not decide the cases
	prev := debug.SetMemoryLimit(-1)
	a := New(DefaultConfig(), Options{}, slog.New(slog.DiscardHandler))
	cases := []struct {
		name    string
		env     string
		limit   int64
		want    int64 // the limit while applied
		wantErr string
	}{
		{"default 384MiB", "", 384 << 20, 384 << 20, ""},
		{"0 turns it off", "", 0, prev, ""},
		{"GOMEMLIMIT wins", "1GiB", 200 << 20, prev, ""},
		{"too small", "", 1 << 20, prev, "below 32MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", c.env)
			cfg := RuntimeConfig{MemoryLimit: config.Bytes(c.limit)}
			errs := cfg.Validate()
			if c.wantErr != "" {
				if len(errs) != 1 || !strings.Contains(errs.Err().Error(), c.wantErr) {
					t.Fatalf("Validate = %v, want one error mentioning %q", errs, c.wantErr)
				}
				return
			}
			if len(errs) != 0 {
				t.Fatalf("Validate = %v", errs)
			}
			restore := a.applyMemoryLimit(cfg)
			if got := debug.SetMemoryLimit(-1); got != c.want {
				t.Fatalf("memory limit while applied = %d, want %d", got, c.want)
			}
			restore()
			if got := debug.SetMemoryLimit(-1); got != prev {
				t.Fatalf("memory limit after restore = %d, want %d", got, prev)
			}
		})
	}
	if got := DefaultConfig().Runtime.MemoryLimit; got != 384<<20 {
		t.Fatalf("default runtime.memory_limit = %d, want 384MiB", got)
	}
}

// TestReleaseMemoryEmptiesPools: what a sync.Pool holds (parquet-go's encoder buffers, after a large
// registry file was archived) is gone after releaseMemory, victim cache included, so the collector
// can free it and the OS gets the memory back.
func TestReleaseMemoryEmptiesPools(t *testing.T) {
	var p sync.Pool
	for range 4 {
		p.Put(new([1 << 20]byte))
	}
	releaseMemory()
	if v := p.Get(); v != nil {
		t.Fatalf("after releaseMemory the pool still held a %T", v)
	}
}
