package broker

import (
	"context"
	"log/slog"
)

// mochiLog routes mochi's own log records into sluice's logger one level quieter: mochi logs its start-up
// chatter at Info (now Debug) and every client that misbehaves or drops its connection at Warn (now
// Info: a per-client event, not an operator's problem). Errors stay errors. Attributes holding whole
// packets ("pk", "packet") are dropped: they carry payloads, which do not belong in logs.
//
// mochi logs every message it drops for a subscriber whose queue is full, one record a message; those
// records go to dropped (with the client's id) instead, which counts them and warns once in a while.
type mochiLog struct {
	h       slog.Handler
	dropped func(client string)
}

// mochi's messages for a QoS 1 or 2 message dropped because the client's queue is full.
var dropMessages = map[string]bool{"client store quota reached": true, "packet ids exhausted": true}

func newMochiLogger(l *slog.Logger, dropped func(client string)) *slog.Logger {
	return slog.New(mochiLog{l.Handler(), dropped}).With("mqtt", "mochi")
}

func quieter(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelError:
		return l
	case l >= slog.LevelWarn:
		return slog.LevelInfo
	default:
		return slog.LevelDebug
	}
}

func (m mochiLog) Enabled(ctx context.Context, l slog.Level) bool {
	return m.h.Enabled(ctx, quieter(l))
}

func (m mochiLog) Handle(ctx context.Context, r slog.Record) error {
	msg := r.Message
	if dropMessages[msg] && m.dropped != nil {
		client := ""
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "client" {
				client = a.Value.String()
				return false
			}
			return true
		})
		m.dropped(client)
		return nil
	}
	if msg == "" {
		msg = "client connection ended"
	}
	out := slog.NewRecord(r.Time, quieter(r.Level), msg, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != "pk" && a.Key != "packet" {
			out.AddAttrs(a)
		}
		return true
	})
	return m.h.Handle(ctx, out)
}

func (m mochiLog) WithAttrs(as []slog.Attr) slog.Handler {
	kept := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a.Key != "pk" && a.Key != "packet" {
			kept = append(kept, a)
		}
	}
	return mochiLog{m.h.WithAttrs(kept), m.dropped}
}

func (m mochiLog) WithGroup(name string) slog.Handler {
	return mochiLog{m.h.WithGroup(name), m.dropped}
}
