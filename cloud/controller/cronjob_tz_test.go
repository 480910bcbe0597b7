package controller

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// TestCronJobTimeZoneWithoutZoneinfo: a CronJob's timeZone resolves on a host
// without a zone database. The test runs itself again in a mount namespace where
// an empty tmpfs hides /usr/share/zoneinfo.
func TestCronJobTimeZoneWithoutZoneinfo(t *testing.T) {
	if os.Getenv("CLOUDBOX_TEST_NO_ZONEINFO") == "1" {
		if _, err := os.Stat("/usr/share/zoneinfo/Asia/Tokyo"); err == nil {
			t.Fatal("the zone database is still visible")
		}
		tz := "Asia/Tokyo"
		cj := &api.CronJob{Spec: api.CronJobSpec{TimeZone: &tz}}
		loc, err := cj.Location()
		if err != nil {
			t.Fatalf("without /usr/share/zoneinfo: %v", err)
		}
		if _, off := time.Date(2026, 1, 1, 0, 0, 0, 0, loc).Zone(); off != 9*3600 {
			t.Fatalf("Asia/Tokyo is UTC%+d s", off)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1)")
	}
	if _, err := os.Stat("/usr/share/zoneinfo"); err != nil {
		t.Skip("no /usr/share/zoneinfo to hide")
	}
	// Go also falls back to GOROOT's lib/time/zoneinfo.zip, which a build host has.
	hide := "mount -t tmpfs none /usr/share/zoneinfo"
	if goroot := filepath.Join(runtime.GOROOT(), "lib", "time"); goroot != "lib/time" {
		if _, err := os.Stat(goroot); err == nil {
			hide += " && mount -t tmpfs none '" + goroot + "'"
		}
	}
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		hide+` && exec "$0" -test.run '^TestCronJobTimeZoneWithoutZoneinfo$' -test.count=1`, os.Args[0])
	cmd.Env = append(os.Environ(), "CLOUDBOX_TEST_NO_ZONEINFO=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}
