package cli

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestServePprofRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:6060", ":6060", "10.0.0.1:6060", "example.com:6060", "6060"} {
		_, stop, err := servePprof(addr, zap.NewNop())
		if err == nil {
			stop()
			t.Errorf("--pprof %q: served, want refused", addr)
			continue
		}
		if !strings.Contains(err.Error(), "--pprof") {
			t.Errorf("--pprof %q: error %q does not name the flag", addr, err)
		}
	}
}

func TestServePprofServesProfilesOnLoopback(t *testing.T) {
	addr, stop, err := servePprof("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		stop()
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Errorf("GET /debug/pprof/goroutine: %s %.80q", resp.Status, body)
	}
	stop()
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Error("still serving after stop")
	}
}
