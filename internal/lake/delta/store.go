package delta

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Store is where tables live. Keys are slash-separated paths from the lake's root. Errors for a
// missing key wrap fs.ErrNotExist; PutIfAbsent on an existing key returns an error wrapping
// fs.ErrExist.
type Store interface {
	// Get returns the content of key.
	Get(ctx context.Context, key string) ([]byte, error)
	// PutIfAbsent creates key holding data, atomically, only if key does not exist. When it returns
	// nil the content is durable and every reader sees all of it or nothing.
	PutIfAbsent(ctx context.Context, key string, data []byte) error
	// Put creates or replaces key, atomically and durably.
	Put(ctx context.Context, key string, data []byte) error
	// Create starts writing key; the content becomes visible and durable when the writer's Close
	// returns nil, and is dropped by Abort.
	Create(ctx context.Context, key string) (FileWriter, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the base names directly inside the directory dir (which ends in "/").
	List(ctx context.Context, dir string) ([]string, error)
}

// FileWriter writes one file of a Store.
type FileWriter interface {
	io.Writer
	// Close makes the file visible and durable.
	Close() error
	// Abort drops what was written; the key is left as it was.
	Abort()
}

// BlobStore is a Store on a gocloud.dev/blob bucket.
//
// For a local directory (file://) it writes by hand what fileblob gets wrong for a transaction log:
// fileblob implements WriterOptions.IfNotExist as "stat, then rename", which two writers can both
// pass (the second rename silently replaces the first commit), and it never calls fsync, so a power
// cut can leave a commit that names data files that were never written out. Here a local
// PutIfAbsent writes a temporary file in the same directory, fsyncs it, and creates the final name
// with link(2), which fails if the name exists; data files are fsynced before they are renamed into
// place, and directories after. Reads, listings and deletes go through the bucket. Object stores
// (S3, GCS, Azure) do put-if-absent natively and durably, so there the bucket does everything.
type BlobStore struct {
	bucket *blob.Bucket
	dir    string // the local directory the bucket maps to; "" when it is not file://
}

// NewBlobStore returns a Store on bucket. localDir is the directory a file:// bucket maps to (it
// enables the local write path described on BlobStore); pass "" for any other bucket.
func NewBlobStore(bucket *blob.Bucket, localDir string) *BlobStore {
	return &BlobStore{bucket: bucket, dir: localDir}
}

// Get implements Store.
func (s *BlobStore) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := s.bucket.ReadAll(ctx, key)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("get %s: %w", key, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return b, nil
}

// PutIfAbsent implements Store.
func (s *BlobStore) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	if s.dir != "" {
		return s.putIfAbsentLocal(ctx, key, data)
	}
	err := s.bucket.WriteAll(ctx, key, data, &blob.WriterOptions{IfNotExist: true, ContentType: "application/octet-stream"})
	if err != nil {
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return fmt.Errorf("create %s: %w", key, fs.ErrExist)
		}
		return fmt.Errorf("create %s: %w", key, err)
	}
	return nil
}

// Put implements Store.
func (s *BlobStore) Put(ctx context.Context, key string, data []byte) error {
	w, err := s.Create(ctx, key)
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return fmt.Errorf("put %s: %w", key, err)
	}
	return w.Close()
}

// Create implements Store.
func (s *BlobStore) Create(ctx context.Context, key string) (FileWriter, error) {
	if s.dir != "" {
		if err := checkLocalKey(key); err != nil {
			return nil, err
		}
	}
	wctx, cancel := context.WithCancel(ctx)
	fw := &blobWriter{key: key, cancel: cancel, dir: s.dir}
	opts := &blob.WriterOptions{ContentType: "application/octet-stream"}
	if s.dir != "" {
		opts.BeforeWrite = func(as func(any) bool) error {
			var f *os.File
			if as(&f) {
				fw.file = f
			}
			return nil
		}
	}
	w, err := s.bucket.NewWriter(wctx, key, opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	fw.w = w
	return fw, nil
}

type blobWriter struct {
	key    string
	w      *blob.Writer
	cancel context.CancelFunc
	dir    string
	file   *os.File // the local temporary file, when the bucket is file://
}

func (w *blobWriter) Write(p []byte) (int, error) { return w.w.Write(p) }

func (w *blobWriter) Close() error {
	defer w.cancel()
	if w.file != nil {
		if err := w.file.Sync(); err != nil {
			w.Abort()
			return fmt.Errorf("write %s: fsync: %w", w.key, err)
		}
	}
	if err := w.w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", w.key, err)
	}
	if w.dir != "" {
		if err := syncDir(filepath.Dir(filepath.Join(w.dir, filepath.FromSlash(w.key)))); err != nil {
			return fmt.Errorf("write %s: %w", w.key, err)
		}
	}
	return nil
}

func (w *blobWriter) Abort() {
	w.cancel() // a cancelled blob write is discarded on Close
	_ = w.w.Close()
}

// Delete implements Store.
func (s *BlobStore) Delete(ctx context.Context, key string) error {
	if err := s.bucket.Delete(ctx, key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List implements Store. A local directory is read directly: fileblob's listing stats every entry
// and fails when a temporary file vanishes under it (another writer finishing a commit).
func (s *BlobStore) List(ctx context.Context, dir string) ([]string, error) {
	if s.dir != "" {
		entries, err := os.ReadDir(filepath.Join(s.dir, filepath.FromSlash(dir)))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && !strings.HasSuffix(e.Name(), ".tmp") {
				names = append(names, e.Name())
			}
		}
		return names, nil
	}
	it := s.bucket.List(&blob.ListOptions{Prefix: dir, Delimiter: "/"})
	var names []string
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return names, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		if !obj.IsDir {
			names = append(names, strings.TrimPrefix(obj.Key, dir))
		}
	}
}

func (s *BlobStore) putIfAbsentLocal(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkLocalKey(key); err != nil {
		return err
	}
	final := filepath.Join(s.dir, filepath.FromSlash(key))
	dir := filepath.Dir(final)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, "."+filepath.Base(final)+"."+hex.EncodeToString(rnd[:])+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	defer os.Remove(tmp)
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("create %s: %w", key, werr)
	}
	if err := os.Link(tmp, final); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", key, fs.ErrExist)
		}
		return fmt.Errorf("create %s: %w", key, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("create %s: %w", key, err)
	}
	return nil
}

// checkLocalKey refuses keys whose fileblob path would differ from the plain join used by the local
// write path (fileblob escapes unusual characters).
func checkLocalKey(key string) error {
	for _, r := range key {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_-.=/", r)
		if !ok {
			return fmt.Errorf("key %q: only letters, digits and _-.=/ are allowed in a local lake", key)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("key %q is not a plain relative path", key)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
