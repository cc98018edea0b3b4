package broker

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// echoStream serves one websocket connection: it reads a 4-byte length and that many bytes through
// wsConn, in reads of at most readSize bytes (the first byte of the stream after the length), and sends
// back what it read as one message; or the read error's text as a text message.
func echoStream(w http.ResponseWriter, r *http.Request) {
	up := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	ws := &wsConn{Conn: c.NetConn(), c: c}
	reply := func(b []byte, err error) {
		if err != nil {
			_ = c.WriteMessage(websocket.TextMessage, []byte(err.Error()))
			return
		}
		_ = c.WriteMessage(websocket.BinaryMessage, b)
	}
	var hdr [5]byte
	if _, err := io.ReadFull(ws, hdr[:]); err != nil {
		reply(nil, err)
		return
	}
	n, readSize := binary.BigEndian.Uint32(hdr[:4]), max(int(hdr[4]), 1)
	out := make([]byte, 0, n)
	buf := make([]byte, readSize)
	for uint32(len(out)) < n {
		k, err := ws.Read(buf[:min(readSize, int(n)-len(out))])
		if err != nil {
			reply(nil, err)
			return
		}
		out = append(out, buf[:k]...)
	}
	reply(out, nil)
}

// roundTrip sends data as the binary messages cut says (each byte of cut is the next message's length;
// the rest goes in one last message) and returns what the server read through wsConn.
func roundTrip(t testing.TB, url string, data, cut []byte, readSize byte) ([]byte, int) {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	stream := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	stream = append(stream, readSize)
	stream = append(stream, data...)
	for _, k := range cut {
		if len(stream) == 0 {
			break // the server has it all and may have replied and closed
		}
		k := min(int(k), len(stream))
		if err := c.WriteMessage(websocket.BinaryMessage, stream[:k]); err != nil {
			t.Fatal(err)
		}
		stream = stream[k:]
	}
	if len(stream) > 0 {
		if err := c.WriteMessage(websocket.BinaryMessage, stream); err != nil {
			t.Fatal(err)
		}
	}
	typ, got, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return got, typ
}

func TestWSConn(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(echoStream))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	data := []byte("\x30\x0d\x00\x07plant/xhello") // a PUBLISH
	cases := []struct {
		name     string
		cut      []byte
		readSize byte
	}{
		{"one message", nil, 255},
		{"byte by byte", bytes.Repeat([]byte{1}, 30), 255},
		{"empty messages between", []byte{0, 3, 0, 0, 2, 0}, 4},
		{"tiny reads", []byte{7}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, typ := roundTrip(t, url, data, c.cut, c.readSize)
			if typ != websocket.BinaryMessage || !bytes.Equal(got, data) {
				t.Fatalf("read %q (type %d), want %q", got, typ, data)
			}
		})
	}
	t.Run("text frame", func(t *testing.T) {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.WriteMessage(websocket.TextMessage, []byte("\x30\x00")); err != nil {
			t.Fatal(err)
		}
		typ, msg, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || string(msg) != errNotBinary.Error() {
			t.Fatalf("got %d %q %v, want the not-binary error", typ, msg, err)
		}
	})
}

// FuzzWSConn checks that wsConn hands mochi the exact byte stream of the client's binary messages,
// however the client splits it (empty messages included) and however small mochi's reads are.
func FuzzWSConn(f *testing.F) {
	srv := httptest.NewServer(http.HandlerFunc(echoStream))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	f.Add([]byte{}, []byte{}, byte(1))
	f.Add([]byte("\x30\x0d\x00\x07plant/xhello"), []byte{1, 0, 2}, byte(3))
	f.Add(bytes.Repeat([]byte{0xff}, 4096), []byte{255, 255, 0, 17}, byte(255))
	f.Add([]byte("\x30\x0d\x00\x07plant/xhello\xde\xad"), []byte{5}, byte(0))
	f.Fuzz(func(t *testing.T, data, cut []byte, readSize byte) {
		if len(cut) > 64 {
			cut = cut[:64]
		}
		got, typ := roundTrip(t, url, data, cut, readSize)
		if typ != websocket.BinaryMessage || !bytes.Equal(got, data) {
			t.Fatalf("read %q (type %d), want %q", got, typ, data)
		}
	})
}
