package app

import (
	"log/slog"
	"net"
	"testing"
)

func TestFreeIfTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	freeAddr := free.Addr().String()
	free.Close()
	a := New(DefaultConfig(), Options{}, slog.New(slog.DiscardHandler))
	cases := []struct{ name, addr, def, want string }{
		{"default and taken: a free port", taken.Addr().String(), taken.Addr().String(), "127.0.0.1:0"},
		{"default and free: kept", freeAddr, freeAddr, freeAddr},
		{"not the default: kept even when taken", taken.Addr().String(), "127.0.0.1:1", taken.Addr().String()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := a.freeIfTaken(c.addr, c.def, "test"); got != c.want {
				t.Fatalf("freeIfTaken(%s, %s) = %s, want %s", c.addr, c.def, got, c.want)
			}
		})
	}
}
