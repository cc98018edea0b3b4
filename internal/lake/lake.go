package lake

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file://
	_ "gocloud.dev/blob/memblob"  // mem://

	"github.com/sluice-project/sluice/internal/lake/delta"
)

// Lake is an open lake: the bucket its tables live in.
type Lake struct {
	url    string
	bucket *blob.Bucket
	store  delta.Store
	logger *slog.Logger
	m      *metrics
}

// Option configures Open.
type Option func(*Lake)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(lk *Lake) { lk.logger = l } }

// WithRegisterer registers the lake's metrics (sluice_lake_*) on reg.
func WithRegisterer(reg prometheus.Registerer) Option {
	return func(lk *Lake) { lk.m = newMetrics(reg) }
}

// Open opens the lake at rawURL. A file:// lake's directory is created if missing; files are written
// without fileblob's .attrs sidecars and with temporary files beside their final names (not in the
// system temporary directory, which may be another file system). For other schemes the URL's path
// is the prefix of the lake in the bucket (s3://bucket/lake), and their gocloud.dev/blob driver must
// be linked into the binary (import internal/lake/cloud).
func Open(ctx context.Context, rawURL string, opts ...Option) (*Lake, error) {
	lk := &Lake{url: rawURL, logger: slog.Default()}
	for _, o := range opts {
		o(lk)
	}
	if lk.m == nil {
		lk.m = newMetrics(nil)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open lake %q: %w", rawURL, err)
	}
	localDir := ""
	switch u.Scheme {
	case "file":
		if u.Path == "" || (u.Host != "" && u.Host != "localhost") {
			return nil, fmt.Errorf("open lake %q: want file:///absolute/path", rawURL)
		}
		p := u.Path
		if runtime.GOOS == "windows" && len(p) > 2 && p[0] == '/' && p[2] == ':' {
			p = p[1:] // file:///C:/lake
		}
		localDir = filepath.FromSlash(p)
		if err := os.MkdirAll(localDir, 0o755); err != nil {
			return nil, fmt.Errorf("open lake %q: %w", rawURL, err)
		}
		q := u.Query()
		if !q.Has("metadata") {
			q.Set("metadata", "skip")
		}
		if !q.Has("no_tmp_dir") {
			q.Set("no_tmp_dir", "true")
		}
		u.RawQuery = q.Encode()
	default:
		// gocloud.dev takes an object store's prefix from ?prefix= and ignores the path: make
		// s3://bucket/lake mean what it says.
		if p := strings.Trim(u.Path, "/"); p != "" {
			q := u.Query()
			if !q.Has("prefix") {
				q.Set("prefix", p+"/")
			}
			u.Path, u.RawPath, u.RawQuery = "", "", q.Encode()
		}
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("open lake %q: %w", rawURL, err)
	}
	lk.bucket = b
	lk.store = delta.NewBlobStore(b, localDir)
	return lk, nil
}

// URL is the URL the lake was opened with.
func (l *Lake) URL() string { return l.url }

// Close releases the bucket. Writers must not be used afterwards.
func (l *Lake) Close() error {
	if err := l.bucket.Close(); err != nil {
		return fmt.Errorf("close lake: %w", err)
	}
	return nil
}

// Files returns the data files of table (paths relative to the lake's root) as its Delta log says at
// its latest version, and that version (-1 when the table does not exist). This is how readers find
// a table's content: a file the log does not name is not part of the table.
func (l *Lake) Files(ctx context.Context, table string) ([]string, int64, error) {
	t, err := delta.Open(ctx, l.store, table, delta.Options{Logger: l.logger, TrackFiles: true})
	if err != nil {
		return nil, -1, err
	}
	var out []string
	for _, a := range t.Snapshot().Files() {
		p, err := delta.UnescapePath(a.Path)
		if err != nil {
			return nil, -1, err
		}
		out = append(out, table+"/"+p)
	}
	return out, t.Snapshot().Version(), nil
}
