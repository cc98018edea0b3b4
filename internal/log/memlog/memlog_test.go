package memlog

import (
	"testing"

	slog "github.com/sluice-project/sluice/internal/log"
	"github.com/sluice-project/sluice/internal/log/logtest"
)

func TestConformance(t *testing.T) {
	logtest.Run(t, logtest.Engine{Open: func(t testing.TB, dir string) slog.Log { return New() }})
}
