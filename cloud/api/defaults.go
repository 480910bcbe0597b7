package api

import (
	"reflect"
	"strings"
)

// Pod defaults, as Kubernetes sets them.
const (
	DefaultSchedulerName                 = "default-scheduler"
	DefaultTerminationGracePeriodSeconds = 30
	DefaultTerminationMessagePath        = "/dev/termination-log"
	// DefaultVolumeMode is the file mode of projected ConfigMap and Secret keys (0644).
	DefaultVolumeMode = 0o644
)

// Default fills the fields a user may leave out, in place, so that what is stored says
// everything: TypeMeta from the registry, then the kind's own defaults (a pod's
// restartPolicy, each container's imagePullPolicy, ...). It never overwrites a value
// that is set, and calling it twice changes nothing the second time. Objects of
// unregistered types, and nil, are left alone.
func Default(obj Object) {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return
	}
	k, ok := KindOf(obj)
	if !ok {
		return
	}
	tm := obj.GetTypeMeta()
	if tm.Kind == "" || tm.Kind == k.Kind {
		tm.Kind = k.Kind
		if tm.APIVersion == "" || canonicalAPIVersion(tm.APIVersion) == k.APIVersion() {
			tm.APIVersion = k.APIVersion()
		}
	}
	if k.Default != nil {
		k.Default(obj)
	}
}

func defaultNamespace(obj Object) {
	ns := obj.(*Namespace)
	if ns.Status.Phase == "" {
		ns.Status.Phase = NamespaceActive
	}
}

func defaultPod(obj Object) {
	s := &obj.(*Pod).Spec
	if s.RestartPolicy == "" {
		s.RestartPolicy = RestartAlways
	}
	if s.DNSPolicy == "" {
		s.DNSPolicy = DNSClusterFirst
	}
	if s.TerminationGracePeriodSeconds == nil {
		g := int64(DefaultTerminationGracePeriodSeconds)
		s.TerminationGracePeriodSeconds = &g
	}
	if s.SchedulerName == "" {
		s.SchedulerName = DefaultSchedulerName
	}
	for i := range s.InitContainers {
		defaultContainer(&s.InitContainers[i])
	}
	for i := range s.Containers {
		defaultContainer(&s.Containers[i])
	}
	for i := range s.Volumes {
		v := &s.Volumes[i]
		if v.ConfigMap != nil && v.ConfigMap.DefaultMode == nil {
			m := int32(DefaultVolumeMode)
			v.ConfigMap.DefaultMode = &m
		}
		if v.Secret != nil && v.Secret.DefaultMode == nil {
			m := int32(DefaultVolumeMode)
			v.Secret.DefaultMode = &m
		}
	}
}

func defaultContainer(c *Container) {
	if c.ImagePullPolicy == "" {
		c.ImagePullPolicy = defaultPullPolicy(c.Image)
	}
	if c.TerminationMessagePath == "" {
		c.TerminationMessagePath = DefaultTerminationMessagePath
	}
	if c.TerminationMessagePolicy == "" {
		c.TerminationMessagePolicy = TerminationMessageReadFile
	}
	for i := range c.Ports {
		if c.Ports[i].Protocol == "" {
			c.Ports[i].Protocol = ProtocolTCP
		}
	}
	for i := range c.Env {
		if f := c.Env[i].ValueFrom; f != nil && f.FieldRef != nil && f.FieldRef.APIVersion == "" {
			f.FieldRef.APIVersion = "v1"
		}
	}
	// A limit without a request asks for what it allows: Kubernetes's rule, which keeps
	// the scheduler from placing a limited container as if it needed nothing.
	for name, limit := range c.Resources.Limits {
		if _, ok := c.Resources.Requests[name]; !ok {
			if c.Resources.Requests == nil {
				c.Resources.Requests = ResourceList{}
			}
			c.Resources.Requests[name] = limit
		}
	}
	for _, p := range []*Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
		if p != nil {
			defaultProbe(p)
		}
	}
	if l := c.Lifecycle; l != nil {
		for _, h := range []*Handler{l.PostStart, l.PreStop} {
			if h != nil {
				defaultHandler(h)
			}
		}
	}
}

func defaultProbe(p *Probe) {
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = 1
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = 10
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = 3
	}
	defaultHandler(&p.Handler)
}

func defaultHandler(h *Handler) {
	if g := h.HTTPGet; g != nil {
		if g.Path == "" {
			g.Path = "/"
		}
		if g.Scheme == "" {
			g.Scheme = "HTTP"
		}
	}
}

// defaultPullPolicy is Always for ":latest" and for an image with neither tag nor
// digest (which means latest), and IfNotPresent otherwise, as Kubernetes decides.
func defaultPullPolicy(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
		// A digest pins the content: pulling again could only fetch the same bytes.
		if imageTag(image) == "" {
			return PullIfNotPresent
		}
	}
	if tag := imageTag(image); tag == "" || tag == "latest" {
		return PullAlways
	}
	return PullIfNotPresent
}

// imageTag returns the tag of a reference without digest: what follows the last ':'
// of the last path element ("localhost:5000/busybox" has none).
func imageTag(ref string) string {
	last := ref[strings.LastIndexByte(ref, '/')+1:]
	if i := strings.LastIndexByte(last, ':'); i >= 0 {
		return last[i+1:]
	}
	return ""
}
