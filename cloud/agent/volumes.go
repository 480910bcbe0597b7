package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
	"github.com/cloudbox/cloudbox/internal/clock"
)

// Volumes live in StateDir/pods/<uid>/volumes/<name>, except hostPath, which is the
// host's path itself. An emptyDir with medium Memory is a plain directory too: a
// tmpfs would need mounting and unmounting around the pod's life, which is left for
// later (its sizeLimit is not enforced either). ConfigMap and Secret volumes are
// written once, when the pod starts; later changes to the objects are not projected.

// volumeError is a volume that cannot be set up as the pod asks. Any error of
// setupVolumes keeps the pod's containers waiting in ContainerCreating (the kubelet's
// FailedMount) with the message, and is retried with back-off.
type volumeError struct{ msg string }

func (e *volumeError) Error() string { return e.msg }

// podVolume is a volume ready to be bind-mounted.
type podVolume struct {
	path string
	// within is true for volumes the agent made (not hostPath): a subPath must stay
	// inside them.
	within   bool
	readOnly bool
}

func (a *Agent) volumeDir(uid, name string) string {
	return filepath.Join(a.podDir(uid), "volumes", name)
}

// setupVolumes prepares every volume of p. It is safe to call again after a failure.
func (a *Agent) setupVolumes(p *api.Pod, src *sources) (map[string]podVolume, error) {
	out := make(map[string]podVolume, len(p.Spec.Volumes))
	for i := range p.Spec.Volumes {
		v := &p.Spec.Volumes[i]
		pv, err := a.setupVolume(p, v, src)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		out[v.Name] = pv
	}
	return out, nil
}

func (a *Agent) setupVolume(p *api.Pod, v *api.Volume, src *sources) (podVolume, error) {
	dir := a.volumeDir(p.UID, v.Name)
	switch {
	case v.EmptyDir != nil:
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return podVolume{}, err
		}
		// Any user of the container may write, as in Kubernetes; MkdirAll's mode is
		// cut by the umask.
		if err := os.Chmod(dir, 0o777); err != nil {
			return podVolume{}, err
		}
		return podVolume{path: dir, within: true}, nil
	case v.HostPath != nil:
		if err := checkHostPath(v.HostPath); err != nil {
			return podVolume{}, err
		}
		return podVolume{path: v.HostPath.Path}, nil
	case v.ConfigMap != nil:
		cv := v.ConfigMap
		cm, err := src.configMap(cv.Name)
		if err != nil {
			return podVolume{}, err
		}
		data := map[string][]byte{}
		if cm == nil && !optional(cv.Optional) {
			return podVolume{}, &volumeError{fmt.Sprintf("configmap %q not found", cv.Name)}
		}
		if cm != nil {
			for k, s := range cm.Data {
				data[k] = []byte(s)
			}
			for k, b := range cm.BinaryData {
				data[k] = b
			}
		}
		err = project(dir, data, cv.Items, cv.DefaultMode, optional(cv.Optional), "ConfigMap "+p.Namespace+"/"+cv.Name)
		return podVolume{path: dir, within: true, readOnly: true}, err
	case v.Secret != nil:
		sv := v.Secret
		sec, err := src.secret(sv.SecretName)
		if err != nil {
			return podVolume{}, err
		}
		if sec == nil && !optional(sv.Optional) {
			return podVolume{}, &volumeError{fmt.Sprintf("secret %q not found", sv.SecretName)}
		}
		var data map[string][]byte
		if sec != nil {
			data = sec.Data
		}
		err = project(dir, data, sv.Items, sv.DefaultMode, optional(sv.Optional), "Secret "+p.Namespace+"/"+sv.SecretName)
		return podVolume{path: dir, within: true, readOnly: true}, err
	case v.PersistentVolumeClaim != nil:
		return a.claimVolume(p, v.PersistentVolumeClaim, src)
	}
	return podVolume{}, &volumeError{"no volume source"}
}

// project writes a ConfigMap's or Secret's keys as files in dir: every key under its
// own name, or only the listed items at their paths. Modes are an item's mode, else
// defaultMode, else 0644, Kubernetes's defaults for both kinds.
func project(dir string, data map[string][]byte, items []api.KeyToPath, defaultMode *int32, optional bool, what string) error {
	// Files are written fresh each time: a retry after a failure must not leave keys
	// from an earlier version of the object.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mode := os.FileMode(api.DefaultVolumeMode)
	if defaultMode != nil {
		mode = os.FileMode(*defaultMode) & os.ModePerm
	}
	if len(items) == 0 {
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if err := writeProjected(dir, k, data[k], mode); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		b, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return &volumeError{fmt.Sprintf("couldn't find key %s in %s", it.Key, what)}
		}
		m := mode
		if it.Mode != nil {
			m = os.FileMode(*it.Mode) & os.ModePerm
		}
		if err := writeProjected(dir, it.Path, b, m); err != nil {
			return err
		}
	}
	return nil
}

func writeProjected(dir, rel string, data []byte, mode os.FileMode) error {
	if rel == "" || filepath.IsAbs(rel) || hasDotDot(rel) {
		return &volumeError{fmt.Sprintf("path %q must be relative and may not contain '..'", rel)}
	}
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		return err
	}
	// WriteFile's mode is cut by the umask; the asked mode is what the container sees.
	return os.Chmod(p, mode)
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// checkHostPath applies a hostPath volume's type, creating what the *OrCreate types
// ask for.
func checkHostPath(h *api.HostPathVolume) error {
	p := h.Path
	if !filepath.IsAbs(p) {
		return &volumeError{fmt.Sprintf("hostPath %q must be absolute", p)}
	}
	want := func(ok func(os.FileMode) bool, what string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return &volumeError{fmt.Sprintf("hostPath type check failed: %s is not a %s", p, what)}
		}
		if !ok(fi.Mode()) {
			return &volumeError{fmt.Sprintf("hostPath type check failed: %s is not a %s", p, what)}
		}
		return nil
	}
	switch h.Type {
	case "":
		return nil
	case "DirectoryOrCreate":
		if err := os.MkdirAll(p, 0o755); err != nil {
			return &volumeError{fmt.Sprintf("hostPath %s: %v", p, err)}
		}
		return want(os.FileMode.IsDir, "directory")
	case "Directory":
		return want(os.FileMode.IsDir, "directory")
	case "FileOrCreate":
		if _, err := os.Stat(p); os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return &volumeError{fmt.Sprintf("hostPath %s: %v", p, err)}
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return &volumeError{fmt.Sprintf("hostPath %s: %v", p, err)}
			}
			f.Close()
		}
		return want(os.FileMode.IsRegular, "file")
	case "File":
		return want(os.FileMode.IsRegular, "file")
	case "Socket":
		return want(func(m os.FileMode) bool { return m&os.ModeSocket != 0 }, "socket")
	case "CharDevice":
		return want(func(m os.FileMode) bool { return m&os.ModeCharDevice != 0 }, "character device")
	case "BlockDevice":
		return want(func(m os.FileMode) bool { return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0 }, "block device")
	}
	return &volumeError{fmt.Sprintf("hostPath type %q is not supported", h.Type)}
}

// containerMounts turns a container's volumeMounts into bind mounts. A subPath is a
// path inside the volume, created (as a directory) if missing in a writable volume,
// and may not lead outside the volume through "..", or through symbolic links in a
// volume the pod could have written.
func containerMounts(c *api.Container, vols map[string]podVolume) ([]Mount, error) {
	var out []Mount
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			return nil, &configError{fmt.Sprintf("volume %q of mount %s is not defined", vm.Name, vm.MountPath)}
		}
		src := v.path
		if vm.SubPath != "" {
			if filepath.IsAbs(vm.SubPath) || hasDotDot(vm.SubPath) {
				return nil, &configError{fmt.Sprintf("subPath %q must be relative and may not contain '..'", vm.SubPath)}
			}
			src = filepath.Join(v.path, vm.SubPath)
			if _, err := os.Lstat(src); os.IsNotExist(err) && !v.readOnly {
				if err := os.MkdirAll(src, 0o755); err != nil {
					return nil, &configError{fmt.Sprintf("subPath %q: %v", vm.SubPath, err)}
				}
			}
			if v.within {
				if err := insideDir(v.path, src); err != nil {
					return nil, &configError{fmt.Sprintf("subPath %q: %v", vm.SubPath, err)}
				}
			}
		}
		out = append(out, Mount{Source: src, Destination: vm.MountPath, ReadOnly: vm.ReadOnly || v.readOnly})
	}
	return out, nil
}

// insideDir checks that p, with its symbolic links resolved, is inside root.
func insideDir(root, p string) error {
	r, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	q, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(r, q)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("resolves to %s, outside the volume", q)
	}
	return nil
}

var claimKind = api.KindOfType[*api.PersistentVolumeClaim]()

// claimVolumesDir holds the local volumes that bind persistent volume claims:
// StateDir/volumes/<namespace>/<claim-uid>. They outlive the pods that use them and
// go when their claim is deleted (see removeStaleClaimVolumes).
func (a *Agent) claimVolumesDir() string { return filepath.Join(a.cfg.StateDir, "volumes") }

// claimVolume mounts a pod's persistentVolumeClaim volume. The first node to run a
// pod using an unbound claim binds it: the claim's annotation AnnotationVolumeNode
// names the node (written with the claim's resourceVersion as precondition, so two
// nodes cannot both bind it), then its status says Bound. A claim bound to another
// node cannot be mounted here; the pod waits in ContainerCreating with the reason.
func (a *Agent) claimVolume(p *api.Pod, src *api.PersistentVolumeSource, s *sources) (podVolume, error) {
	claim, err := client.Get[*api.PersistentVolumeClaim](s.ctx, s.c, p.Namespace, src.ClaimName)
	if client.IsNotFound(err) {
		return podVolume{}, &volumeError{fmt.Sprintf("persistentvolumeclaim %q not found", src.ClaimName)}
	}
	if err != nil {
		return podVolume{}, fmt.Errorf("reading persistentvolumeclaim %q: %w", src.ClaimName, err)
	}
	if claim.DeletionTimestamp != nil {
		return podVolume{}, &volumeError{fmt.Sprintf("persistentvolumeclaim %q is being deleted", src.ClaimName)}
	}
	if node := claim.BoundNode(); node != "" && node != a.cfg.NodeName {
		return podVolume{}, &volumeError{fmt.Sprintf("persistentvolumeclaim %q is bound to a local volume on node %s", src.ClaimName, node)}
	}
	dir := filepath.Join(a.claimVolumesDir(), p.Namespace, claim.UID)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return podVolume{}, err
	}
	if claim.BoundNode() == "" {
		if err := os.Chmod(dir, 0o777); err != nil {
			return podVolume{}, err
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{
			"resourceVersion": claim.ResourceVersion,
			"annotations":     map[string]string{api.AnnotationVolumeNode: a.cfg.NodeName},
		}})
		if _, err := s.c.Patch(s.ctx, claimKind, p.Namespace, claim.Name, "", patch); err != nil {
			return podVolume{}, fmt.Errorf("binding persistentvolumeclaim %q: %w", src.ClaimName, err)
		}
		a.log.Info("bound a claim to a local volume", zap.String("claim", claim.Key()), zap.String("dir", dir))
	}
	if claim.Status.Phase != api.ClaimBound {
		capacity := api.ResourceList{}
		if q, ok := claim.Spec.Resources.Requests[api.ResourceStorage]; ok {
			capacity[api.ResourceStorage] = q
		}
		patch, _ := json.Marshal(map[string]any{"status": map[string]any{
			"phase": api.ClaimBound, "accessModes": claim.Spec.AccessModes, "capacity": capacity,
		}})
		if _, err := s.c.Patch(s.ctx, claimKind, p.Namespace, claim.Name, "status", patch); err != nil {
			return podVolume{}, fmt.Errorf("marking persistentvolumeclaim %q bound: %w", src.ClaimName, err)
		}
	}
	return podVolume{path: dir, within: true, readOnly: src.ReadOnly}, nil
}

// watchClaims removes the local volumes of deleted claims: once when it starts, for
// the claims deleted while the agent was down, and again whenever a claim is deleted.
// A failed sweep is tried again after the back-off base on the agent's clock. It
// returns when ctx is cancelled.
func (a *Agent) watchClaims(ctx context.Context) {
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default: // a sweep is pending already, and will see this deletion too
		}
	}
	client.For[*api.PersistentVolumeClaim](a.informers).AddHandler(client.TypedHandler[*api.PersistentVolumeClaim]{
		OnDelete: func(*api.PersistentVolumeClaim) { poke() },
	})
	poke()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		err := a.removeStaleClaimVolumes(ctx)
		if ctx.Err() != nil {
			return
		}
		if a.claimsSwept != nil {
			a.claimsSwept(err)
		}
		if err != nil {
			a.log.Warn("removing the local volumes of deleted claims failed; retrying", zap.Error(err), zap.Duration("in", a.cfg.BackoffBase))
			if !clock.Sleep(a.cfg.Clock, a.cfg.BackoffBase, ctx.Done()) {
				return
			}
			poke()
		}
	}
}

// removeStaleClaimVolumes deletes the local volumes of claims that no longer exist
// (a claim re-created under the same name has another UID, so gets a fresh volume).
// watchClaims runs it when the agent starts and when it sees a claim deleted.
//
// The directories are read before the claims are listed: claimVolume makes a
// directory only after reading its claim, so a directory seen here belongs to a claim
// the list shows unless the claim was deleted. Listing first would lose the volume of
// a claim created, and mounted, between the list and the read.
func (a *Agent) removeStaleClaimVolumes(ctx context.Context) error {
	root := a.claimVolumesDir()
	nss, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	var dirs []string // namespace/uid
	for _, ns := range nss {
		uids, err := os.ReadDir(filepath.Join(root, ns.Name()))
		if err != nil {
			return err
		}
		for _, u := range uids {
			dirs = append(dirs, ns.Name()+"/"+u.Name())
		}
	}
	if len(dirs) == 0 {
		return nil
	}
	l, err := a.cfg.Client.ListAll(ctx, claimKind, "", client.ListOptions{})
	if err != nil {
		return fmt.Errorf("listing persistentvolumeclaims: %w", err)
	}
	live := map[string]bool{}
	for _, o := range l.Items {
		live[o.GetObjectMeta().Namespace+"/"+o.GetObjectMeta().UID] = true
	}
	for _, d := range dirs {
		if live[d] {
			continue
		}
		ns, uid, _ := strings.Cut(d, "/")
		a.log.Info("removing the local volume of a deleted claim", zap.String("namespace", ns), zap.String("uid", uid))
		if err := os.RemoveAll(filepath.Join(root, ns, uid)); err != nil {
			return err
		}
	}
	return nil
}
