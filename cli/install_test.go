package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// fakeHost is a machine with (or without) systemd whose systemctl calls are recorded.
func fakeHost(t *testing.T, booted bool) (*serviceHost, *[]string) {
	var calls []string
	return &serviceHost{
		UnitPath:   filepath.Join(t.TempDir(), "system", unitName),
		Booted:     func() bool { return booted },
		Systemctl:  func(args ...string) error { calls = append(calls, strings.Join(args, " ")); return nil },
		Executable: func() (string, error) { return "/usr/local/bin/cloudbox", nil },
	}, &calls
}

func runWith(h *serviceHost, args ...string) (string, string, error) {
	app := &cli.App{Name: "cloudbox", Commands: []*cli.Command{installCommand(h), uninstallCommand(h)},
		Flags: []cli.Flag{&cli.StringFlag{Name: "log-level", Value: "error"}, &cli.StringFlag{Name: "log-format", Value: "console"}}}
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(ReorderArgs(app, append([]string{"cloudbox"}, args...)))
	return out.String(), errOut.String(), err
}

// TestInstallWritesTheUnit: install writes cloudbox.service with the server flags
// given, KillMode=process, the join token in a root-only file, and enables it.
func TestInstallWritesTheUnit(t *testing.T) {
	h, calls := fakeHost(t, true)
	if _, errOut, err := runWith(h, "install", "--role", "worker", "--join", "https://10.0.0.1:6443", "--token", "K10abc::node:s3cret",
		"--node-label", "disk=ssd", "--node-label", "zone name=a b", "--max-pods", "50", "--data-dir", "/srv/cloud box"); err != nil {
		t.Fatalf("install: %v\n%s", err, errOut)
	}
	unit, err := os.ReadFile(h.UnitPath)
	if err != nil {
		t.Fatal(err)
	}
	want := `ExecStart=/usr/local/bin/cloudbox server --role=worker "--data-dir=/srv/cloud box" --join=https://10.0.0.1:6443 --node-label=disk=ssd "--node-label=zone name=a b" --max-pods=50` + "\n"
	for _, line := range []string{want, "KillMode=process\n", "EnvironmentFile=-" + h.UnitPath + ".env\n", "Restart=always\n", "WantedBy=multi-user.target\n"} {
		if !strings.Contains(string(unit), line) {
			t.Errorf("the unit lacks %q:\n%s", line, unit)
		}
	}
	if strings.Contains(string(unit), "s3cret") {
		t.Errorf("the join token is in the world-readable unit:\n%s", unit)
	}
	env, err := os.ReadFile(h.UnitPath + ".env")
	if st, _ := os.Stat(h.UnitPath + ".env"); err != nil || string(env) != "CLOUDBOX_TOKEN=K10abc::node:s3cret\n" || st.Mode().Perm() != 0o600 {
		t.Errorf("the environment file: %v %q", err, env)
	}
	if got := strings.Join(*calls, "; "); got != "daemon-reload; enable --now cloudbox.service" {
		t.Errorf("systemctl calls: %s", got)
	}
	if got := unitFlag(string(unit), "data-dir"); got != "/srv/cloud box" {
		t.Errorf("the unit's data dir reads back as %q", got)
	}
}

// TestInstallWithoutSystemd says so, writes nothing and exits non-zero.
func TestInstallWithoutSystemd(t *testing.T) {
	h, calls := fakeHost(t, false)
	_, _, err := runWith(h, "install", "--max-pods", "20")
	if err == nil || !strings.Contains(err.Error(), "systemd is not running on this machine") ||
		!strings.Contains(err.Error(), "/usr/local/bin/cloudbox server --max-pods=20") {
		t.Fatalf("install without systemd: %v", err)
	}
	if _, err := os.Stat(h.UnitPath); !os.IsNotExist(err) || len(*calls) > 0 {
		t.Errorf("install without systemd left a unit (%v) or ran systemctl %v", err, *calls)
	}
}

// TestUninstall stops the service before it cleans up the data dir the unit names,
// then removes the unit; without systemd it says so and cleans up.
func TestUninstall(t *testing.T) {
	for _, booted := range []bool{true, false} {
		h, calls := fakeHost(t, booted)
		dataDir := filepath.Join(t.TempDir(), "data")
		if err := os.MkdirAll(filepath.Join(dataDir, "agent"), 0o700); err != nil {
			t.Fatal(err)
		}
		if _, errOut, err := runWith(h, "install", "--data-dir", dataDir); booted && err != nil {
			t.Fatalf("install: %v\n%s", err, errOut)
		}
		if !booted { // a unit left from when the machine ran systemd
			if err := os.MkdirAll(filepath.Dir(h.UnitPath), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(h.UnitPath, []byte(unitText([]string{"/usr/local/bin/cloudbox", "server", "--data-dir=" + dataDir}, "")), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		*calls = nil
		out, errOut, err := runWith(h, "uninstall")
		if err != nil {
			t.Fatalf("uninstall (systemd %v): %v\n%s", booted, err, errOut)
		}
		if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
			t.Errorf("uninstall (systemd %v) left the data dir: %v\n%s", booted, err, out)
		}
		if _, err := os.Stat(h.UnitPath); !os.IsNotExist(err) {
			t.Errorf("uninstall (systemd %v) left the unit: %v", booted, err)
		}
		wantCalls := "disable --now cloudbox.service; daemon-reload"
		if !booted {
			wantCalls = ""
			if !strings.Contains(errOut, "systemd is not running on this machine") {
				t.Errorf("uninstall without systemd does not say so: %q", errOut)
			}
		}
		if got := strings.Join(*calls, "; "); got != wantCalls {
			t.Errorf("uninstall (systemd %v): systemctl calls %q, want %q", booted, got, wantCalls)
		}
	}
}
