package wal

import (
	"fmt"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// Limits of the settings, checked by Validate.
const (
	minSegmentSize = 4 << 10
	maxSegmentSize = 1 << 30
	minBatchBytes  = 4 << 10
)

// Config is the write-ahead log's configuration (yaml section "wal").
type Config struct {
	Dir string `yaml:"dir" doc:"Directory of the segment files. \"\" means <data_dir>/wal. One process at a time: Open locks it."`

	SegmentSize config.Bytes `yaml:"segment_size" doc:"Size (bytes) at which a segment file is sealed and the next one started; default 64MiB, from 4KiB to 1GiB.\nRetention deletes whole segments, so smaller segments free disk sooner. One entry must fit in a segment."`

	MaxSize config.Bytes `yaml:"max_size" doc:"Retained bytes (all segment files) at which appends block until consumers commit and whole segments can be deleted: backpressure, never loss.\nDefault 4GiB; 0 means no limit; otherwise at least 2 x segment_size (the segment being written is never deleted)."`

	MaxBatchBytes config.Bytes `yaml:"max_batch_bytes" doc:"Most bytes one group commit writes before it fsyncs; appends queued beyond it wait for the next commit.\nDefault 4MiB, at least 4KiB. Bounds the writer's buffer and the latency of one commit."`

	CommitInterval time.Duration `yaml:"commit_interval" doc:"Least time between the starts of two group commits while appends that do not wait for their commit are queued (the MQTT source's and the embedded broker's, with messages in flight): they wait for the rest of it and share the next fdatasync, so a fast stream costs at most one fdatasync per interval instead of one per fdatasync's duration (2 cores, sluice through Mosquitto at QoS 1: CPU per message 14.2/16.9 µs with 0, 10.7/11.6 with 2ms). A queue of synchronous appends only (broker.pipeline: false), whose callers append again only once committed, is committed at once: holding them back would slow them, not batch them. An append after a longer pause is committed at once. Adds up to this much to the time until an append is durable (and an MQTT QoS 1 message acknowledged). 0 = commit as soon as the previous commit ends."`

	LazyCommitInterval time.Duration `yaml:"lazy_commit_interval" doc:"commit_interval for appends nobody waits on (MQTT QoS 0 messages, which no one acknowledges): while only such appends are queued, a group commit waits until this long after the start of the last one, so a steady QoS 0 stream costs at most one fdatasync per interval. An append that is waited on (QoS 1) ends this wait (commit_interval still applies to it), and one after a longer pause is committed at once. A crash loses at most this much of QoS 0 messages that the log received; QoS 0 allows it. 0 = as commit_interval."`

	Fsync bool `yaml:"fsync" doc:"fdatasync each group commit before acknowledging its appends (default true).\nfalse: acknowledged appends survive a crash of sluice but not of the machine (power loss, kernel panic)."`
}

// DefaultConfig returns the defaults: 64MiB segments, 4GiB retained at most, 4MiB group commits,
// fsync on. Dir is left empty: the app fills it in from data_dir.
func DefaultConfig() Config {
	return Config{
		SegmentSize:        64 << 20,
		MaxSize:            4 << 30,
		MaxBatchBytes:      4 << 20,
		CommitInterval:     2 * time.Millisecond,
		LazyCommitInterval: 2 * time.Millisecond,
		Fsync:              true,
	}
}

// Validate implements config.Validator.
func (c Config) Validate() config.Errors {
	var es config.Errors
	segOK := c.SegmentSize >= minSegmentSize && c.SegmentSize <= maxSegmentSize
	es.Check(segOK, "segment_size",
		fmt.Sprintf("%s is out of range", c.SegmentSize),
		fmt.Sprintf("use a size from %s to %s, e.g. 64MiB", config.Bytes(minSegmentSize), config.Bytes(maxSegmentSize)))
	es.Check(!segOK || c.MaxSize == 0 || c.MaxSize >= 2*c.SegmentSize, "max_size",
		fmt.Sprintf("%s is less than 2 x segment_size (%s): the log could fill up with nothing it may delete", c.MaxSize, c.SegmentSize),
		fmt.Sprintf("set it to at least %s, or 0 for no limit", 2*c.SegmentSize))
	es.Check(c.MaxBatchBytes >= minBatchBytes, "max_batch_bytes",
		fmt.Sprintf("%s is too small", c.MaxBatchBytes),
		fmt.Sprintf("use at least %s, e.g. 4MiB", config.Bytes(minBatchBytes)))
	for _, iv := range []struct {
		key string
		d   time.Duration
	}{{"commit_interval", c.CommitInterval}, {"lazy_commit_interval", c.LazyCommitInterval}} {
		es.Check(iv.d >= 0 && iv.d <= maxCommitInterval, iv.key, fmt.Sprintf("%s is out of range", iv.d),
			fmt.Sprintf("use 0 (no wait) up to %s, e.g. 2ms", maxCommitInterval))
	}
	return es
}

// maxCommitInterval bounds commit_interval and lazy_commit_interval: every append waits up to that long.
const maxCommitInterval = time.Second

// maxEntry is the largest entry value that fits in one segment.
func (c Config) maxEntry() int {
	return int(c.SegmentSize) - segmentHeaderSize - recordHeaderSize
}
