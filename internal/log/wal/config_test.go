package wal

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(c *Config)
		errKey string // "" = valid
	}{
		{"defaults", func(c *Config) {}, ""},
		{"smallest segment", func(c *Config) { c.SegmentSize = 4 << 10; c.MaxSize = 8 << 10 }, ""},
		{"no size limit", func(c *Config) { c.MaxSize = 0 }, ""},
		{"fsync off", func(c *Config) { c.Fsync = false }, ""},
		{"segment too small", func(c *Config) { c.SegmentSize = 4<<10 - 1 }, "segment_size"},
		{"segment too large", func(c *Config) { c.SegmentSize = 2 << 30 }, "segment_size"},
		{"max_size below two segments", func(c *Config) { c.MaxSize = 127 << 20 }, "max_size"},
		{"batch too small", func(c *Config) { c.MaxBatchBytes = 1000 }, "max_batch_bytes"},
		{"intervals off", func(c *Config) { c.CommitInterval, c.LazyCommitInterval = 0, 0 }, ""},
		{"intervals at most", func(c *Config) { c.CommitInterval, c.LazyCommitInterval = time.Second, time.Second }, ""},
		{"negative commit interval", func(c *Config) { c.CommitInterval = -time.Millisecond }, "commit_interval"},
		{"lazy interval too long", func(c *Config) { c.LazyCommitInterval = 2 * time.Second }, "lazy_commit_interval"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			es := c.Validate()
			if tc.errKey == "" {
				if len(es) != 0 {
					t.Fatalf("Validate = %v, want no error", es)
				}
				return
			}
			if len(es) != 1 || es[0].Key != tc.errKey || es[0].Problem == "" || es[0].Fix == "" {
				t.Fatalf("Validate = %v, want one error on %s with problem and fix", es, tc.errKey)
			}
		})
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	type root struct {
		WAL Config `yaml:"wal"`
	}
	tests := []struct {
		name string
		env  string
		want []string // substrings of the error; nil = no error
	}{
		{"size with unit", "SLUICE_WAL_SEGMENT_SIZE=128MiB", nil},
		{"not a size", "SLUICE_WAL_SEGMENT_SIZE=huge", []string{"wal.segment_size", "SLUICE_WAL_SEGMENT_SIZE", "huge"}},
		{"out of range", "SLUICE_WAL_SEGMENT_SIZE=100TiB", []string{"wal.segment_size", "out of range", "SLUICE_WAL_SEGMENT_SIZE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &root{WAL: DefaultConfig()}
			err := config.Load("", r, []string{tc.env})
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load with %s succeeded", tc.env)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestConfigDocumented(t *testing.T) {
	var b bytes.Buffer
	if err := config.Document(&b, struct {
		WAL Config `yaml:"wal"`
	}{DefaultConfig()}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"segment_size: 64MiB", "max_size: 4GiB", "max_batch_bytes: 4MiB", "fsync: true", "# env: SLUICE_WAL_DIR"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("documented config lacks %q:\n%s", want, b.String())
		}
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	if _, err := Open(DefaultConfig(), nil, nil); err == nil || !strings.Contains(err.Error(), "dir") {
		t.Fatalf("Open without a dir = %v, want an error naming dir", err)
	}
	c := testConfig(t.TempDir(), 1000)
	if _, err := Open(c, nil, nil); err == nil || !strings.Contains(err.Error(), "segment_size") {
		t.Fatalf("Open with a 1000-byte segment = %v, want an error naming segment_size", err)
	}
}
