package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sluice-project/sluice/internal/testkit"
)

// Workspace is what a bench command, or its test, runs in: the repository, a scratch directory, and
// the sluice binary built from the repository into it.
type Workspace struct {
	Root string // repository root
	Work string // scratch directory
	Bin  string // the sluice binary
	keep bool
}

// NewWorkspace finds the repository and creates the scratch directory sluice-<name>-* (with keep, it
// names it on w, so it can be looked at afterwards).
func NewWorkspace(name string, keep bool, w io.Writer) (*Workspace, error) {
	root, err := testkit.FindRepoRoot()
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "sluice-"+name+"-")
	if err != nil {
		return nil, err
	}
	ws := &Workspace{Root: root, Work: work, keep: keep}
	if keep {
		fmt.Fprintf(w, "%s: scratch directory %s\n", name, work)
	}
	return ws, nil
}

// Build builds sluice from the repository into the scratch directory, as ws.Bin.
func (ws *Workspace) Build(ctx context.Context) (err error) {
	ws.Bin, err = Build(ctx, ws.Root, ws.Work)
	return err
}

// Close removes the scratch directory, unless it is kept.
func (ws *Workspace) Close() {
	if !ws.keep {
		_ = os.RemoveAll(ws.Work)
	}
}

// Say returns a progress logger: each line on w, after the time of day.
func Say(w io.Writer) func(format string, a ...any) {
	return func(format string, a ...any) {
		fmt.Fprintf(w, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
	}
}

// Ticker runs f at once and then every interval on its own goroutine, until the returned stop is
// called (stop waits for it).
func Ticker(interval time.Duration, f func()) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			f()
			select {
			case <-quit:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}
