package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func (h *harness) configMap(name string, data map[string]string) {
	h.t.Helper()
	cm := client.NewObject[*api.ConfigMap]()
	cm.Name, cm.Namespace, cm.Data = name, "default", data
	h.create(cm)
}

func (h *harness) secret(name string, data map[string]string) {
	h.t.Helper()
	s := client.NewObject[*api.Secret]()
	s.Name, s.Namespace, s.StringData = name, "default", data
	h.create(s)
}

func ptr[T any](v T) *T { return &v }

func TestEnvironment(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	h.configMap("settings", map[string]string{"LEVEL": "debug", "MODE": "fast"})
	h.secret("creds", map[string]string{"password": "s3cret", "USER": "admin"})

	pod := h.newPod("env", ctr("app", "/bin/app", "--level=$(LEVEL)", "$(MISSING)", "$$(LEVEL)"))
	pod.Labels = map[string]string{"tier": "web"}
	c := &pod.Spec.Containers[0]
	c.Args = []string{"--user", "$(DB_USER)"}
	c.EnvFrom = []api.EnvFromSource{
		{ConfigMapRef: &api.LocalRef{Name: "settings"}},
		{SecretRef: &api.LocalRef{Name: "creds"}, Prefix: "DB_"},
		{ConfigMapRef: &api.LocalRef{Name: "absent", Optional: ptr(true)}},
	}
	c.Env = []api.EnvVar{
		{Name: "MODE", Value: "slow"},
		{Name: "URL", Value: "http://$(DB_USER)@db/$(POD_NAME)"},
		{Name: "POD_NAME", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "LATE", Value: "$(POD_NAME)-$(NOPE)"},
		{Name: "NS", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.namespace"}}},
		{Name: "UID", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
		{Name: "NODE", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "HOST_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
		{Name: "POD_IP", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "TIER", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.labels['tier']"}}},
		{Name: "PASS", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.KeySelector{Name: "creds", Key: "password"}}},
		{Name: "SPEED", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "settings", Key: "MODE"}}},
		{Name: "OPT", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "settings", Key: "nope", Optional: ptr(true)}}},
	}
	p := h.createPod(pod)
	h.waitPod("env", phaseIs(api.PodRunning))
	cfg := h.drv.taskConfig(t, taskID(p, "app", 0))
	want := []string{
		"LEVEL=debug", "MODE=slow", "DB_USER=admin", "DB_password=s3cret",
		"URL=http://admin@db/$(POD_NAME)", // POD_NAME is defined after URL
		"POD_NAME=env", "LATE=env-$(NOPE)", "NS=default", "UID=" + p.UID, "NODE=node-1",
		"HOST_IP=10.0.0.7", "POD_IP=", "TIER=web", "PASS=s3cret", "SPEED=fast",
	}
	if strings.Join(cfg.Env, "\n") != strings.Join(want, "\n") {
		t.Errorf("env:\n%s\nwant:\n%s", strings.Join(cfg.Env, "\n"), strings.Join(want, "\n"))
	}
	if got := strings.Join(cfg.Command, " "); got != "/bin/app --level=debug $(MISSING) $(LEVEL)" {
		t.Errorf("command %q", got)
	}
	if got := strings.Join(cfg.Args, " "); got != "--user admin" {
		t.Errorf("args %q", got)
	}
}

func TestMissingConfigMapIsAConfigError(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("cfgerr", ctr("app"))
	pod.Spec.Containers[0].Env = []api.EnvVar{{Name: "X", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.KeySelector{Name: "later", Key: "x"}}}}
	h.createPod(pod)
	got := h.waitPod("cfgerr", waitingIs("app", reasonConfigError))
	if msg := status(got, "app").State.Waiting.Message; msg != `configmap "later" not found` || got.Status.Phase != api.PodPending {
		t.Errorf("message %q phase %s", msg, got.Status.Phase)
	}
	h.configMap("later", map[string]string{"y": "1"})
	h.clk.Advance(defaultBackoffBase)
	got = h.waitPod("cfgerr", func(p *api.Pod) bool {
		cs := status(p, "app")
		return cs.State.Waiting != nil && strings.Contains(cs.State.Waiting.Message, "couldn't find key x in ConfigMap default/later")
	})
	if h.drv.count("start") != 0 {
		t.Fatal("started without its configuration")
	}
	h.secret("unused", map[string]string{})
	pod2 := h.newPod("secreterr", ctr("app"))
	pod2.Spec.Containers[0].EnvFrom = []api.EnvFromSource{{SecretRef: &api.LocalRef{Name: "nope"}}}
	h.createPod(pod2)
	got = h.waitPod("secreterr", waitingIs("app", reasonConfigError))
	if msg := status(got, "app").State.Waiting.Message; msg != `secret "nope" not found` {
		t.Errorf("message %q", msg)
	}
}

func fileMode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestConfigMapAndSecretVolumes(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	h.configMap("web", map[string]string{"nginx.conf": "server {}", "extra": "x"})
	h.secret("tls", map[string]string{"tls.key": "KEY", "tls.crt": "CRT"})
	hostDir := filepath.Join(t.TempDir(), "made")

	pod := h.newPod("vols", ctr("app"))
	pod.Spec.Volumes = []api.Volume{
		{Name: "conf", ConfigMap: &api.ConfigMapVolume{Name: "web", Items: []api.KeyToPath{{Key: "nginx.conf", Path: "conf.d/site.conf", Mode: ptr(int32(0o600))}}}},
		{Name: "all", ConfigMap: &api.ConfigMapVolume{Name: "web"}},
		{Name: "certs", Secret: &api.SecretVolume{SecretName: "tls", DefaultMode: ptr(int32(0o400))}},
		{Name: "opt", Secret: &api.SecretVolume{SecretName: "absent", Optional: ptr(true)}},
		{Name: "host", HostPath: &api.HostPathVolume{Path: hostDir, Type: "DirectoryOrCreate"}},
		{Name: "scratch", EmptyDir: &api.EmptyDirVolume{Medium: "Memory"}},
	}
	pod.Spec.Containers[0].VolumeMounts = []api.VolumeMount{
		{Name: "conf", MountPath: "/etc/nginx"},
		{Name: "all", MountPath: "/etc/all"},
		{Name: "certs", MountPath: "/tls"},
		{Name: "opt", MountPath: "/opt"},
		{Name: "host", MountPath: "/host", ReadOnly: true},
		{Name: "scratch", MountPath: "/work", SubPath: "a/b"},
	}
	p := h.createPod(pod)
	h.waitPod("vols", phaseIs(api.PodRunning))
	dir := filepath.Join(h.stateDir, "pods", p.UID, "volumes")
	if s := readFile(t, filepath.Join(dir, "conf", "conf.d", "site.conf")); s != "server {}" {
		t.Errorf("projected item: %q", s)
	}
	if m := fileMode(t, filepath.Join(dir, "conf", "conf.d", "site.conf")); m != 0o600 {
		t.Errorf("item mode %o", m)
	}
	if _, err := os.Stat(filepath.Join(dir, "conf", "extra")); !os.IsNotExist(err) {
		t.Error("a key not listed in items was projected")
	}
	if m := fileMode(t, filepath.Join(dir, "all", "extra")); m != 0o644 {
		t.Errorf("default mode %o, want 0644", m)
	}
	if s := readFile(t, filepath.Join(dir, "certs", "tls.key")); s != "KEY" || fileMode(t, filepath.Join(dir, "certs", "tls.key")) != 0o400 {
		t.Errorf("secret file %q mode %o", s, fileMode(t, filepath.Join(dir, "certs", "tls.key")))
	}
	if fi, err := os.Stat(hostDir); err != nil || !fi.IsDir() {
		t.Errorf("hostPath DirectoryOrCreate: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "scratch", "a", "b")); err != nil || !fi.IsDir() {
		t.Errorf("subPath: %v", err)
	}
	cfg := h.drv.taskConfig(t, taskID(p, "app", 0))
	want := []Mount{
		{Source: filepath.Join(dir, "conf"), Destination: "/etc/nginx", ReadOnly: true},
		{Source: filepath.Join(dir, "all"), Destination: "/etc/all", ReadOnly: true},
		{Source: filepath.Join(dir, "certs"), Destination: "/tls", ReadOnly: true},
		{Source: filepath.Join(dir, "opt"), Destination: "/opt", ReadOnly: true},
		{Source: hostDir, Destination: "/host", ReadOnly: true},
		{Source: filepath.Join(dir, "scratch", "a", "b"), Destination: "/work"},
	}
	if len(cfg.Mounts) != len(want) {
		t.Fatalf("mounts %+v", cfg.Mounts)
	}
	for i := range want {
		if cfg.Mounts[i] != want[i] {
			t.Errorf("mount %d: %+v, want %+v", i, cfg.Mounts[i], want[i])
		}
	}
}

func TestMissingClaimKeepsThePodCreating(t *testing.T) {
	h := newHarness(t)
	h.startAgent()
	pod := h.newPod("pvc", ctr("app"))
	pod.Spec.Volumes = []api.Volume{{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeSource{ClaimName: "db"}}}
	h.createPod(pod)
	got := h.waitPod("pvc", func(p *api.Pod) bool { return p.Status.Reason == "FailedMount" })
	if !strings.Contains(got.Status.Message, `volume "data": persistentvolumeclaim "db" not found`) ||
		got.Status.Phase != api.PodPending {
		t.Errorf("status: %s %q %q", got.Status.Phase, got.Status.Reason, got.Status.Message)
	}
	if cs := status(got, "app"); cs.State.Waiting == nil || cs.State.Waiting.Reason != reasonContainerCreating {
		t.Errorf("container: %+v", cs)
	}
	if h.drv.count("pull")+h.drv.count("start") != 0 {
		t.Error("started despite the volume")
	}
}

func TestSubPathMayNotEscapeTheVolume(t *testing.T) {
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(vol, "link")); err != nil {
		t.Fatal(err)
	}
	vols := map[string]podVolume{"v": {path: vol, within: true}}
	for _, sub := range []string{"../x", "/etc", "link", "link/ssl"} {
		c := &api.Container{VolumeMounts: []api.VolumeMount{{Name: "v", MountPath: "/m", SubPath: sub}}}
		if _, err := containerMounts(c, vols); err == nil {
			t.Errorf("subPath %q was accepted", sub)
		}
	}
}
