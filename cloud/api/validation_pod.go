package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"
)

func validatePod(obj Object) FieldErrors {
	p := obj.(*Pod)
	s := &p.Spec
	var errs FieldErrors

	volumes, verrs := validateVolumes("spec.volumes", s.Volumes)
	errs = append(errs, verrs...)

	if len(s.Containers) == 0 {
		errs.add("spec.containers", "required")
	}
	names := map[string]bool{}
	for i := range s.InitContainers {
		errs = append(errs, validateContainer(index("spec.initContainers", i), &s.InitContainers[i], true, names, volumes)...)
	}
	for i := range s.Containers {
		errs = append(errs, validateContainer(index("spec.containers", i), &s.Containers[i], false, names, volumes)...)
	}

	switch s.RestartPolicy {
	case "", RestartAlways, RestartOnFailure, RestartNever:
	default:
		errs.add("spec.restartPolicy", oneOf(s.RestartPolicy, RestartAlways, RestartOnFailure, RestartNever))
	}
	switch s.DNSPolicy {
	case "", DNSClusterFirst, DNSClusterFirstWithHostNet, DNSDefault, DNSNone:
	default:
		errs.add("spec.dnsPolicy", oneOf(s.DNSPolicy, DNSClusterFirst, DNSClusterFirstWithHostNet, DNSDefault, DNSNone))
	}
	if g := s.TerminationGracePeriodSeconds; g != nil {
		errs.check("spec.terminationGracePeriodSeconds", checkNonNegative(*g))
	}
	if d := s.ActiveDeadlineSeconds; d != nil && *d <= 0 {
		errs.addf("spec.activeDeadlineSeconds", "%d must be greater than 0", *d)
	}
	if s.NodeName != "" {
		errs.check("spec.nodeName", checkDNSSubdomain(s.NodeName))
	}
	errs = append(errs, validateLabels("spec.nodeSelector", s.NodeSelector)...)
	if s.Hostname != "" {
		errs.check("spec.hostname", checkDNSLabel(s.Hostname))
	}
	if s.Subdomain != "" {
		errs.check("spec.subdomain", checkDNSLabel(s.Subdomain))
	}
	for i, t := range s.Tolerations {
		errs = append(errs, validateToleration(index("spec.tolerations", i), t)...)
	}
	if rc := s.RuntimeClassName; rc != "" && rc != RuntimeClassVM {
		errs.addf("spec.runtimeClassName", "%q is not a runtime class: leave it empty for containers (%q is for instance launcher pods)", rc, RuntimeClassVM)
	}
	return errs
}

// validateVolumes checks the pod's volumes and returns the set of their names for the
// containers' mounts.
func validateVolumes(field string, vols []Volume) (map[string]bool, FieldErrors) {
	var errs FieldErrors
	names := map[string]bool{}
	for i := range vols {
		v := &vols[i]
		p := index(field, i)
		switch {
		case v.Name == "":
			errs.add(child(p, "name"), "required")
		case names[v.Name]:
			errs.addf(child(p, "name"), "duplicate name %q", v.Name)
		default:
			errs.check(child(p, "name"), checkDNSLabel(v.Name))
			names[v.Name] = true
		}
		var sources []string
		if v.EmptyDir != nil {
			sources = append(sources, "emptyDir")
			if v.EmptyDir.SizeLimit != nil {
				errs.check(child(p, "emptyDir.sizeLimit"), checkQuantity(*v.EmptyDir.SizeLimit))
			}
		}
		if v.HostPath != nil {
			sources = append(sources, "hostPath")
			errs.check(child(p, "hostPath.path"), checkAbsPath(v.HostPath.Path))
		}
		if v.ConfigMap != nil {
			sources = append(sources, "configMap")
			if v.ConfigMap.Name == "" {
				errs.add(child(p, "configMap.name"), "required")
			}
			errs = append(errs, validateKeyToPaths(child(p, "configMap.items"), v.ConfigMap.Items)...)
		}
		if v.Secret != nil {
			sources = append(sources, "secret")
			if v.Secret.SecretName == "" {
				errs.add(child(p, "secret.secretName"), "required")
			}
			errs = append(errs, validateKeyToPaths(child(p, "secret.items"), v.Secret.Items)...)
		}
		if v.PersistentVolumeClaim != nil {
			sources = append(sources, "persistentVolumeClaim")
			if v.PersistentVolumeClaim.ClaimName == "" {
				errs.add(child(p, "persistentVolumeClaim.claimName"), "required")
			}
		}
		switch len(sources) {
		case 1:
		case 0:
			errs.add(p, "exactly one volume source is required (emptyDir, hostPath, configMap, secret or persistentVolumeClaim); found none")
		default:
			errs.addf(p, "exactly one volume source is required; found %d: %s", len(sources), strings.Join(sources, ", "))
		}
	}
	return names, errs
}

func validateKeyToPaths(field string, items []KeyToPath) FieldErrors {
	var errs FieldErrors
	for i, it := range items {
		p := index(field, i)
		if it.Key == "" {
			errs.add(child(p, "key"), "required")
		}
		switch {
		case it.Path == "":
			errs.add(child(p, "path"), "required")
		case strings.HasPrefix(it.Path, "/"):
			errs.addf(child(p, "path"), "%q must be a relative path", it.Path)
		case hasDotDot(it.Path):
			errs.addf(child(p, "path"), "%q must not contain '..'", it.Path)
		}
	}
	return errs
}

func validateContainer(p string, c *Container, init bool, names, volumes map[string]bool) FieldErrors {
	var errs FieldErrors
	switch {
	case c.Name == "":
		errs.add(child(p, "name"), "required")
	case names[c.Name]:
		errs.addf(child(p, "name"), "duplicate name %q", c.Name)
	default:
		errs.check(child(p, "name"), checkDNSLabel(c.Name))
		names[c.Name] = true
	}
	switch {
	case c.Image == "":
		errs.add(child(p, "image"), "required")
	case strings.TrimSpace(c.Image) != c.Image:
		errs.addf(child(p, "image"), "%q must not have leading or trailing whitespace", c.Image)
	}
	switch c.ImagePullPolicy {
	case "", PullAlways, PullIfNotPresent, PullNever:
	default:
		errs.add(child(p, "imagePullPolicy"), oneOf(c.ImagePullPolicy, PullAlways, PullIfNotPresent, PullNever))
	}
	switch c.TerminationMessagePolicy {
	case "", TerminationMessageReadFile, TerminationMessageFallbackLogs:
	default:
		errs.add(child(p, "terminationMessagePolicy"), oneOf(c.TerminationMessagePolicy, TerminationMessageReadFile, TerminationMessageFallbackLogs))
	}
	if c.WorkingDir != "" {
		errs.check(child(p, "workingDir"), checkAbsPath(c.WorkingDir))
	}

	portNames := map[string]bool{}
	for i, port := range c.Ports {
		pp := index(child(p, "ports"), i)
		if port.Name != "" {
			if msg := checkIANASvcName(port.Name); msg != "" {
				errs.add(child(pp, "name"), msg)
			} else if portNames[port.Name] {
				errs.addf(child(pp, "name"), "duplicate name %q", port.Name)
			}
			portNames[port.Name] = true
		}
		errs.check(child(pp, "containerPort"), checkPort(port.ContainerPort))
		if port.HostPort != 0 {
			errs.check(child(pp, "hostPort"), checkPort(port.HostPort))
		}
		switch port.Protocol {
		case "", ProtocolTCP, ProtocolUDP, ProtocolSCTP:
		default:
			errs.add(child(pp, "protocol"), oneOf(port.Protocol, ProtocolTCP, ProtocolUDP, ProtocolSCTP))
		}
	}

	for i, e := range c.Env {
		ep := index(child(p, "env"), i)
		if e.Name == "" {
			errs.add(child(ep, "name"), "required")
		} else {
			errs.check(child(ep, "name"), checkEnvVarName(e.Name))
		}
		if e.ValueFrom != nil {
			if e.Value != "" {
				errs.add(child(ep, "valueFrom"), "may not be set when value is not empty")
			}
			errs = append(errs, validateEnvSource(child(ep, "valueFrom"), e.ValueFrom)...)
		}
	}
	for i, e := range c.EnvFrom {
		ep := index(child(p, "envFrom"), i)
		if e.Prefix != "" {
			errs.check(child(ep, "prefix"), checkEnvVarName(e.Prefix))
		}
		var n int
		if e.ConfigMapRef != nil {
			n++
			if e.ConfigMapRef.Name == "" {
				errs.add(child(ep, "configMapRef.name"), "required")
			}
		}
		if e.SecretRef != nil {
			n++
			if e.SecretRef.Name == "" {
				errs.add(child(ep, "secretRef.name"), "required")
			}
		}
		if n != 1 {
			errs.addf(ep, "exactly one of configMapRef or secretRef is required; found %d", n)
		}
	}

	errs = append(errs, validateResources(child(p, "resources"), c.Resources)...)

	mountPaths := map[string]bool{}
	for i, m := range c.VolumeMounts {
		mp := index(child(p, "volumeMounts"), i)
		switch {
		case m.Name == "":
			errs.add(child(mp, "name"), "required")
		case !volumes[m.Name]:
			errs.addf(child(mp, "name"), "volume %q is not declared in spec.volumes", m.Name)
		}
		if msg := checkAbsPath(m.MountPath); msg != "" {
			errs.add(child(mp, "mountPath"), msg)
		} else if mountPaths[path.Clean(m.MountPath)] {
			errs.addf(child(mp, "mountPath"), "%q is mounted twice", m.MountPath)
		}
		mountPaths[path.Clean(m.MountPath)] = true
		if strings.HasPrefix(m.SubPath, "/") || hasDotDot(m.SubPath) {
			errs.addf(child(mp, "subPath"), "%q must be a relative path without '..'", m.SubPath)
		}
	}

	probes := []struct {
		name  string
		probe *Probe
	}{{"livenessProbe", c.LivenessProbe}, {"readinessProbe", c.ReadinessProbe}, {"startupProbe", c.StartupProbe}}
	for _, pr := range probes {
		if pr.probe == nil {
			continue
		}
		if init {
			errs.add(child(p, pr.name), "not allowed in init containers")
			continue
		}
		errs = append(errs, validateProbe(child(p, pr.name), pr.probe, pr.name != "readinessProbe")...)
	}
	if c.Lifecycle != nil {
		if init {
			errs.add(child(p, "lifecycle"), "not allowed in init containers")
		} else {
			if c.Lifecycle.PostStart != nil {
				errs = append(errs, validateHandler(child(p, "lifecycle.postStart"), c.Lifecycle.PostStart)...)
			}
			if c.Lifecycle.PreStop != nil {
				errs = append(errs, validateHandler(child(p, "lifecycle.preStop"), c.Lifecycle.PreStop)...)
			}
		}
	}
	return errs
}

func validateEnvSource(p string, s *EnvVarSource) FieldErrors {
	var errs FieldErrors
	var n int
	if s.FieldRef != nil {
		n++
		if s.FieldRef.FieldPath == "" {
			errs.add(child(p, "fieldRef.fieldPath"), "required")
		}
	}
	for _, ref := range []struct {
		name string
		sel  *KeySelector
	}{{"configMapKeyRef", s.ConfigMapKeyRef}, {"secretKeyRef", s.SecretKeyRef}} {
		if ref.sel == nil {
			continue
		}
		n++
		if ref.sel.Name == "" {
			errs.add(child(p, ref.name+".name"), "required")
		}
		if ref.sel.Key == "" {
			errs.add(child(p, ref.name+".key"), "required")
		}
	}
	if n != 1 {
		errs.addf(p, "exactly one of fieldRef, configMapKeyRef or secretKeyRef is required; found %d", n)
	}
	return errs
}

func validateResources(p string, r Resources) FieldErrors {
	var errs FieldErrors
	for _, list := range []struct {
		name string
		rl   ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for _, name := range slices.Sorted(maps.Keys(list.rl)) {
			f := key(child(p, list.name), name)
			if msg := checkQualifiedName(name); msg != "" {
				errs.addf(f, "invalid resource name: %s", msg)
			}
			errs.check(f, checkQuantity(list.rl[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(r.Requests)) {
		limit, ok := r.Limits[name]
		if req := r.Requests[name]; ok && req.Cmp(limit) > 0 {
			errs.addf(key(child(p, "requests"), name), "%s must be less than or equal to the %s limit of %s", req, name, limit)
		}
	}
	return errs
}

func validateProbe(p string, pr *Probe, successMustBeOne bool) FieldErrors {
	errs := validateHandler(p, &pr.Handler)
	for _, f := range []struct {
		name string
		val  int32
	}{
		{"initialDelaySeconds", pr.InitialDelaySeconds}, {"timeoutSeconds", pr.TimeoutSeconds},
		{"periodSeconds", pr.PeriodSeconds}, {"successThreshold", pr.SuccessThreshold}, {"failureThreshold", pr.FailureThreshold},
	} {
		errs.check(child(p, f.name), checkNonNegative(int64(f.val)))
	}
	if successMustBeOne && pr.SuccessThreshold > 1 {
		errs.addf(child(p, "successThreshold"), "%d must be 1 for liveness and startup probes", pr.SuccessThreshold)
	}
	return errs
}

// validateHandler checks a probe's or a lifecycle hook's action: exactly one of exec,
// httpGet and tcpSocket.
func validateHandler(p string, h *Handler) FieldErrors {
	var errs FieldErrors
	var kinds []string
	if h.Exec != nil {
		kinds = append(kinds, "exec")
		if len(h.Exec.Command) == 0 {
			errs.add(child(p, "exec.command"), "required")
		}
	}
	if h.HTTPGet != nil {
		kinds = append(kinds, "httpGet")
		errs.check(child(p, "httpGet.port"), checkPortOrName(h.HTTPGet.Port))
		switch h.HTTPGet.Scheme {
		case "", "HTTP", "HTTPS":
		default:
			errs.add(child(p, "httpGet.scheme"), oneOf(h.HTTPGet.Scheme, "HTTP", "HTTPS"))
		}
	}
	if h.TCPSocket != nil {
		kinds = append(kinds, "tcpSocket")
		errs.check(child(p, "tcpSocket.port"), checkPortOrName(h.TCPSocket.Port))
	}
	switch len(kinds) {
	case 1:
	case 0:
		errs.add(p, "exactly one handler is required (exec, httpGet or tcpSocket); found none")
	default:
		errs.addf(p, "exactly one handler is required; found %d: %s", len(kinds), strings.Join(kinds, ", "))
	}
	return errs
}

func checkPortOrName(v IntOrString) string {
	if v.IsStr {
		return checkIANASvcName(v.StrVal)
	}
	return checkPort(v.IntVal)
}

func validateToleration(p string, t Toleration) FieldErrors {
	var errs FieldErrors
	if t.Key != "" {
		errs.check(child(p, "key"), checkQualifiedName(t.Key))
	}
	switch t.Operator {
	case "", TolerationOpEqual:
		errs.check(child(p, "value"), checkLabelValue(t.Value))
	case TolerationOpExists:
		if t.Value != "" {
			errs.addf(child(p, "value"), "must be empty when operator is Exists, not %q", t.Value)
		}
	default:
		errs.add(child(p, "operator"), oneOf(t.Operator, TolerationOpExists, TolerationOpEqual))
	}
	if t.Key == "" && t.Operator != TolerationOpExists {
		errs.add(child(p, "operator"), "must be Exists when key is empty (to tolerate every taint)")
	}
	switch t.Effect {
	case "", TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute:
	default:
		errs.add(child(p, "effect"), oneOf(t.Effect, TaintNoSchedule, TaintPreferNoSchedule, TaintNoExecute))
	}
	if t.TolerationSeconds != nil && t.Effect != TaintNoExecute {
		errs.add(child(p, "tolerationSeconds"), "may only be set when effect is NoExecute")
	}
	return errs
}

func checkAbsPath(s string) string {
	switch {
	case s == "":
		return "required"
	case !strings.HasPrefix(s, "/"):
		return fmt.Sprintf("%q must be an absolute path", s)
	}
	return ""
}

func hasDotDot(p string) bool {
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return true
		}
	}
	return false
}

// podUpdateMessage is Kubernetes's wording, so people find answers to it.
const podUpdateMessage = "pod updates may not change fields other than containers[*].image, initContainers[*].image, activeDeadlineSeconds, tolerations"

// validatePodUpdate applies Kubernetes's rule that a pod's spec is fixed once created,
// save the images, the deadline and the tolerations, and the node it is bound to.
func validatePodUpdate(oldObj, newObj Object) FieldErrors {
	o, n := oldObj.(*Pod), newObj.(*Pod)
	var errs FieldErrors
	if o.Spec.NodeName != "" && n.Spec.NodeName != o.Spec.NodeName {
		errs.addf("spec.nodeName", "may not change once set (was %q)", o.Spec.NodeName)
	}
	if !samePodSpec(mutablePodFieldsCleared(o.Spec), mutablePodFieldsCleared(n.Spec)) {
		errs.add("spec", podUpdateMessage)
	}
	return errs
}

// mutablePodFieldsCleared returns a copy of s without the fields an update may change;
// it does not modify s.
func mutablePodFieldsCleared(s PodSpec) PodSpec {
	clearImages := func(cs []Container) []Container {
		if cs == nil {
			return nil
		}
		out := make([]Container, len(cs))
		copy(out, cs)
		for i := range out {
			out[i].Image = ""
		}
		return out
	}
	s.Containers = clearImages(s.Containers)
	s.InitContainers = clearImages(s.InitContainers)
	s.ActiveDeadlineSeconds = nil
	s.Tolerations = nil
	s.NodeName = ""
	return s
}

// samePodSpec compares two specs as they would be stored, so an empty list and an
// absent one are the same.
func samePodSpec(a, b PodSpec) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}
