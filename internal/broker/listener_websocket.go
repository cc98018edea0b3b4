package broker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// wsListener serves MQTT over websockets on a listener bound before the broker starts.
//
// Written here rather than using mochi's listeners.Websocket, which binds its address only inside Serve
// (http.Server.ListenAndServe, on a goroutine), so a taken port is a log line instead of an error from
// Start, and which cannot report the port chosen for ":0". The connection adapter follows mochi's.
type wsListener struct {
	id        string
	ln        net.Listener
	srv       *http.Server
	log       *slog.Logger
	establish listeners.EstablishFn
	upgrader  websocket.Upgrader
	end       atomic.Bool
}

func newWSListener(id string, ln net.Listener) *wsListener {
	l := &wsListener{
		id: id,
		ln: ln,
		upgrader: websocket.Upgrader{
			Subprotocols: []string{"mqtt"},
			// MQTT clients in browsers connect from pages served elsewhere; authentication is MQTT's.
			CheckOrigin: func(*http.Request) bool { return true },
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", l.handle)
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return l
}

func (l *wsListener) ID() string       { return l.id }
func (l *wsListener) Address() string  { return l.ln.Addr().String() }
func (l *wsListener) Protocol() string { return "ws" }

func (l *wsListener) Init(log *slog.Logger) error {
	l.log = log
	l.srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	return nil
}

// Serve runs until Close; mochi calls it on a goroutine of its own.
func (l *wsListener) Serve(establish listeners.EstablishFn) {
	l.establish = establish
	if err := l.srv.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !l.end.Load() {
		l.log.Error("websocket listener stopped", "err", err)
	}
}

// Close stops accepting, then closes the clients of this listener (upgraded connections are hijacked,
// so http.Server.Shutdown does not wait for them; closeClients does).
func (l *wsListener) Close(closeClients listeners.CloseFn) {
	if l.end.CompareAndSwap(false, true) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = l.srv.Shutdown(ctx)
	}
	closeClients(l.id)
}

func (l *wsListener) handle(w http.ResponseWriter, r *http.Request) {
	c, err := l.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has replied with an HTTP error
	}
	defer c.Close()
	_ = c.NetConn().SetDeadline(time.Now().Add(connectTimeout)) // net/http cleared the accept-time deadline
	if err := l.establish(l.id, &wsConn{Conn: c.NetConn(), c: c}); err != nil {
		l.log.Debug("websocket client ended", "err", err)
	}
}

// wsConn is a websocket connection as the byte stream mochi reads MQTT packets from: each binary message
// carries some of the stream (MQTT over websockets, MQTT 5 section 6). Reads and deadlines go through
// the websocket; writes send one binary message each (mochi serialises writes per client).
type wsConn struct {
	net.Conn
	c *websocket.Conn
	r io.Reader // the current message, or nil
}

var errNotBinary = errors.New("websocket message is not binary (MQTT requires binary frames)")

func (ws *wsConn) Read(p []byte) (int, error) {
	for {
		if ws.r == nil {
			op, r, err := ws.c.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, errNotBinary
			}
			ws.r = r
		}
		n, err := ws.r.Read(p)
		if errors.Is(err, io.EOF) {
			ws.r, err = nil, nil
			if n == 0 {
				continue // an empty message, or the end of one: read the next
			}
		}
		return n, err
	}
}

func (ws *wsConn) Write(p []byte) (int, error) {
	if err := ws.c.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}
