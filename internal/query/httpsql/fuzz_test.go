package httpsql

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecodeRequest: the JSON request body is untrusted. Decoding must not panic, and what it
// accepts must survive a round trip.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{
		``, `{`, `{"sql": "SELECT 1"}`, `{"sql": "SELECT $1", "params": [1, 2.5, "x", true, null]}`,
		`{"sql": "x", "params": [{"a": 1}]}`, `{"sql": "x", "max_rows": -1}`, `{"sql": "x", "nope": 1}`,
		`{"sql": "x", "params": [1e400]}`, `{"sql": "x", "params": [12345678901234567890]}`,
		`{"sql": "` + strings.Repeat("a", 1<<16) + `"}`, `{"sql": "SELECT 1"} trailing garbage`, `{"sql": "\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if err != nil {
			return
		}
		if req.MaxRows < 0 {
			t.Fatalf("negative max_rows %d accepted", req.MaxRows)
		}
		again, err := json.Marshal(map[string]any{"sql": req.SQL, "params": req.Params, "format": req.Format, "max_rows": req.MaxRows})
		if err != nil {
			t.Fatalf("re-encode %+v: %v", req, err)
		}
		back, err := DecodeRequest(again)
		if err != nil || back.SQL != req.SQL || len(back.Params) != len(req.Params) {
			t.Fatalf("round trip of %q: %+v, %v", body, back, err)
		}
	})
}
