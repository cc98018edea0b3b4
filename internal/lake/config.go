package lake

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/sluice-project/sluice/internal/config"
)

// Config is the lake's section ("lake") of sluice's configuration.
type Config struct {
	URL                string        `yaml:"url" doc:"Where the lake lives: file:///absolute/path, s3://bucket/prefix?region=…, gs://bucket/prefix, azblob://container/prefix, mem:// (tests). Empty: file://<data_dir>/lake."`
	FlushInterval      time.Duration `yaml:"flush_interval" doc:"Commit at least this often while rows are buffered (the longest a row waits before it is visible in the lake)."`
	FlushRows          int           `yaml:"flush_rows" doc:"Commit once a stage buffers this many rows (0: no row limit)."`
	FlushBytes         config.Bytes  `yaml:"flush_bytes" doc:"Commit once a stage buffers this much (estimated memory of the buffered rows; 0: no size limit)."`
	Compression        string        `yaml:"compression" doc:"Parquet compression codec: zstd, snappy or none."`
	CompressionLevel   string        `yaml:"compression_level" doc:"zstd effort: auto (each table its measured best: fastest for raw/, whose payloads compress as well at a third of the CPU; default for the others), or fastest, default, better or best for every table (more effort: smaller files, slower commits)."`
	RowGroupBytes      config.Bytes  `yaml:"row_group_bytes" doc:"raw/ only: once the rows the archiver buffered take this much memory, they are encoded (sorted, compressed) as a row group of the file the next commit writes, kept in memory until then, so a stage's memory stays near this however many rows a commit holds (flush_rows, flush_bytes then count compressed bytes). Rows are in order within a row group, not across the file, which costs compression once a row group holds few messages per topic: raw/ bytes per reading at 10,000 sensors, one commit a minute: 8.7 unspooled, 9.1 at 64MiB, 9.8 at 32MiB, 11.2 at 16MiB (none at 1,000 sensors). 0: every row stays in memory until the commit, and the file is sorted as a whole."`
	RowGroupRows       int           `yaml:"row_group_rows" doc:"Rows per Parquet row group. Smaller groups let readers skip more of a file when filtering on sensor_id (readings/ is sorted by sensor_id, metric, ts); larger ones compress better."`
	CheckpointInterval int           `yaml:"checkpoint_interval" doc:"Write a Delta checkpoint every this many commits, so opening a table with a long log stays fast (0: never)."`
}

// DefaultConfig returns the lake's defaults: commit every minute, 1M rows or 128MiB, whichever comes
// first; raw/ rows encoded every 32MiB; zstd at each table's own level; 128Ki-row row groups; a
// checkpoint every 100 commits.
func DefaultConfig() Config {
	return Config{
		FlushInterval:      time.Minute,
		FlushRows:          1_000_000,
		FlushBytes:         128 << 20,
		Compression:        "zstd",
		CompressionLevel:   "auto",
		RowGroupBytes:      32 << 20,
		RowGroupRows:       128 << 10,
		CheckpointInterval: 100,
	}
}

// Schemes the lake knows; each needs its gocloud.dev/blob driver linked into the binary.
var schemes = []string{"file", "mem", "s3", "gs", "azblob"}

var (
	compressions = []string{"zstd", "snappy", "none"}
	levels       = []string{"auto", "fastest", "default", "better", "best"}
)

// Validate implements config.Validator.
func (c Config) Validate() config.Errors {
	var es config.Errors
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		switch {
		case err != nil:
			es.Add("url", fmt.Sprintf("%q is not a URL: %v", c.URL, err), "write a URL such as file:///var/lib/sluice/lake or s3://bucket/lake")
		case !slices.Contains(schemes, u.Scheme):
			es.Add("url", fmt.Sprintf("scheme %q is not supported", u.Scheme), "use one of "+strings.Join(schemes, "://, ")+"://")
		case u.Scheme == "file" && (u.Path == "" || (u.Host != "" && u.Host != "localhost")):
			es.Add("url", "file:// URL without an absolute path", "write file:///absolute/path (three slashes)")
		}
	}
	es.Check(c.FlushInterval > 0, "flush_interval", fmt.Sprintf("%s is not positive", c.FlushInterval), "use a duration such as 1m or 250ms")
	es.Check(c.FlushRows >= 0, "flush_rows", fmt.Sprintf("%d is negative", c.FlushRows), "use 0 (no limit) or a row count such as 1000000")
	es.Check(c.FlushBytes >= 0, "flush_bytes", fmt.Sprintf("%d is negative", c.FlushBytes), "use 0 (no limit) or a size such as 128MiB")
	es.Check(slices.Contains(compressions, c.Compression), "compression", fmt.Sprintf("%q is not a codec", c.Compression), "use "+strings.Join(compressions, ", "))
	es.Check(slices.Contains(levels, c.CompressionLevel), "compression_level", fmt.Sprintf("%q is not a level", c.CompressionLevel), "use "+strings.Join(levels, ", "))
	es.Check(c.RowGroupBytes == 0 || c.RowGroupBytes >= 1<<20, "row_group_bytes", fmt.Sprintf("%d is below 1MiB", c.RowGroupBytes), "use 0 (no row groups before the commit) or at least 1MiB; 32MiB suits most fleets")
	es.Check(c.RowGroupRows >= 1024, "row_group_rows", fmt.Sprintf("%d is below 1024", c.RowGroupRows), "use at least 1024; 131072 suits most tables")
	es.Check(c.CheckpointInterval >= 0, "checkpoint_interval", fmt.Sprintf("%d is negative", c.CheckpointInterval), "use 0 (no checkpoints) or a commit count such as 100")
	return es
}
