package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// dialWebsocket opens an MQTT-over-websocket connection (subprotocol "mqtt", binary frames) and
// returns it as a byte stream. Written here rather than taken from the client libraries because
// neither exports a dialer that ctx can cancel (paho.mqtt.golang's NewWebsocket takes only a timeout;
// autopaho's is unexported), and Run must return promptly when asked to stop.
func dialWebsocket(ctx context.Context, u *url.URL, tlsc *tls.Config) (*wsConn, error) {
	d := websocket.Dialer{
		Subprotocols:    []string{"mqtt"},
		TLSClientConfig: tlsc,
		Proxy:           nil, // the broker URL is dialled as given
	}
	ws, resp, err := d.DialContext(ctx, u.String(), nil)
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("websocket handshake: HTTP %s: %w", resp.Status, err)
		}
		return nil, fmt.Errorf("websocket: %w", err)
	}
	return &wsConn{Conn: ws}, nil
}

// wsConn is a websocket as a net.Conn: each Write is one binary message; Read runs across message
// boundaries (MQTT packets may be split over messages, or share one).
type wsConn struct {
	*websocket.Conn
	rmu sync.Mutex
	r   io.Reader // the message being read
	wmu sync.Mutex
}

func (c *wsConn) Read(b []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for {
		if c.r == nil {
			_, r, err := c.NextReader()
			if err != nil {
				return 0, err
			}
			c.r = r
		}
		n, err := c.r.Read(b)
		if err == io.EOF {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *wsConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c *wsConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}
