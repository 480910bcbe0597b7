package agent

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// configError is a container's configuration that cannot be resolved (a ConfigMap or
// Secret, or one of their keys, that does not exist): the container waits with
// reason CreateContainerConfigError and the message.
type configError struct{ msg string }

func (e *configError) Error() string { return e.msg }

// sources reads the ConfigMaps and Secrets of one namespace through the API, each at
// most once per container start. A nil object with a nil error means "not found".
type sources struct {
	ctx     context.Context
	c       *client.Client
	ns      string
	configs map[string]*api.ConfigMap
	secrets map[string]*api.Secret
}

func newSources(ctx context.Context, c *client.Client, ns string) *sources {
	return &sources{ctx: ctx, c: c, ns: ns, configs: map[string]*api.ConfigMap{}, secrets: map[string]*api.Secret{}}
}

func (s *sources) configMap(name string) (*api.ConfigMap, error) {
	if cm, ok := s.configs[name]; ok {
		return cm, nil
	}
	cm, err := client.Get[*api.ConfigMap](s.ctx, s.c, s.ns, name)
	if client.IsNotFound(err) {
		s.configs[name] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading configmap %q: %w", name, err)
	}
	s.configs[name] = cm
	return cm, nil
}

func (s *sources) secret(name string) (*api.Secret, error) {
	if sec, ok := s.secrets[name]; ok {
		return sec, nil
	}
	sec, err := client.Get[*api.Secret](s.ctx, s.c, s.ns, name)
	if client.IsNotFound(err) {
		s.secrets[name] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading secret %q: %w", name, err)
	}
	s.secrets[name] = sec
	return sec, nil
}

func optional(b *bool) bool { return b != nil && *b }

// envList is an ordered environment where a later definition replaces the value of an
// earlier one in place.
type envList struct {
	names  []string
	values map[string]string
}

func (e *envList) set(k, v string) {
	if e.values == nil {
		e.values = map[string]string{}
	}
	if _, ok := e.values[k]; !ok {
		e.names = append(e.names, k)
	}
	e.values[k] = v
}

func (e *envList) lookup(k string) (string, bool) {
	v, ok := e.values[k]
	return v, ok
}

// strings returns KEY=VALUE pairs in definition order.
func (e *envList) strings() []string {
	out := make([]string, 0, len(e.names))
	for _, k := range e.names {
		out = append(out, k+"="+e.values[k])
	}
	return out
}

// downward gives the values the downward API exposes through fieldRef.
type downward struct {
	pod    *api.Pod
	podIP  string
	hostIP string
}

func (d downward) field(path string) (string, error) {
	p := d.pod
	switch path {
	case "metadata.name":
		return p.Name, nil
	case "metadata.namespace":
		return p.Namespace, nil
	case "metadata.uid":
		return p.UID, nil
	case "spec.nodeName":
		return p.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return p.Spec.ServiceAccountName, nil
	case "status.podIP":
		return d.podIP, nil
	case "status.hostIP":
		return d.hostIP, nil
	}
	for _, m := range []struct {
		prefix string
		values map[string]string
	}{{"metadata.labels", p.Labels}, {"metadata.annotations", p.Annotations}} {
		if rest, ok := strings.CutPrefix(path, m.prefix+"['"); ok && strings.HasSuffix(rest, "']") {
			return m.values[strings.TrimSuffix(rest, "']")], nil
		}
	}
	return "", &configError{fmt.Sprintf("fieldRef %q is not supported", path)}
}

// containerEnv resolves a container's environment as the kubelet does: envFrom
// sources in order, then env entries in order, each value expanded against what was
// defined before it. A missing ConfigMap, Secret or key that is not optional is a
// configError.
func containerEnv(c *api.Container, src *sources, dw downward) (*envList, error) {
	env := &envList{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := src.configMap(from.ConfigMapRef.Name)
			if err != nil {
				return nil, err
			}
			if cm == nil {
				if optional(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, &configError{fmt.Sprintf("configmap %q not found", from.ConfigMapRef.Name)}
			}
			for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
				if validEnvName(from.Prefix + k) {
					env.set(from.Prefix+k, cm.Data[k])
				}
			}
		case from.SecretRef != nil:
			sec, err := src.secret(from.SecretRef.Name)
			if err != nil {
				return nil, err
			}
			if sec == nil {
				if optional(from.SecretRef.Optional) {
					continue
				}
				return nil, &configError{fmt.Sprintf("secret %q not found", from.SecretRef.Name)}
			}
			for _, k := range slices.Sorted(maps.Keys(sec.Data)) {
				if validEnvName(from.Prefix + k) {
					env.set(from.Prefix+k, string(sec.Data[k]))
				}
			}
		}
	}
	for _, ev := range c.Env {
		if ev.ValueFrom == nil {
			env.set(ev.Name, expand(ev.Value, env.lookup))
			continue
		}
		v, ok, err := envSource(ev.ValueFrom, src, dw)
		if err != nil {
			return nil, err
		}
		if ok {
			env.set(ev.Name, v)
		}
	}
	return env, nil
}

// envSource resolves one valueFrom; ok is false for an optional key that is absent.
func envSource(from *api.EnvVarSource, src *sources, dw downward) (v string, ok bool, err error) {
	switch {
	case from.FieldRef != nil:
		v, err := dw.field(from.FieldRef.FieldPath)
		return v, err == nil, err
	case from.ConfigMapKeyRef != nil:
		ref := from.ConfigMapKeyRef
		cm, err := src.configMap(ref.Name)
		if err != nil {
			return "", false, err
		}
		if cm == nil {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, &configError{fmt.Sprintf("configmap %q not found", ref.Name)}
		}
		v, found := cm.Data[ref.Key]
		if !found {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, &configError{fmt.Sprintf("couldn't find key %s in ConfigMap %s/%s", ref.Key, src.ns, ref.Name)}
		}
		return v, true, nil
	case from.SecretKeyRef != nil:
		ref := from.SecretKeyRef
		sec, err := src.secret(ref.Name)
		if err != nil {
			return "", false, err
		}
		if sec == nil {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, &configError{fmt.Sprintf("secret %q not found", ref.Name)}
		}
		v, found := sec.Data[ref.Key]
		if !found {
			if optional(ref.Optional) {
				return "", false, nil
			}
			return "", false, &configError{fmt.Sprintf("couldn't find key %s in Secret %s/%s", ref.Key, src.ns, ref.Name)}
		}
		return string(v), true, nil
	}
	return "", false, nil
}

// validEnvName is Kubernetes's current rule for imported names: printable, no '='.
// Keys that break it are skipped, as the kubelet skips them.
func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if r == '=' || r < ' ' || r > '~' {
			return false
		}
	}
	return true
}

// expand replaces $(VAR) with VAR's value where lookup knows it, turns $$ into $, and
// leaves everything else as written, as Kubernetes expands env values, command and
// args (its third_party/forked/golang/expansion).
func expand(in string, lookup func(string) (string, bool)) string {
	if !strings.Contains(in, "$") {
		return in
	}
	var b strings.Builder
	checkpoint := 0
	for cur := 0; cur < len(in); cur++ {
		if in[cur] != '$' || cur+1 >= len(in) {
			continue
		}
		b.WriteString(in[checkpoint:cur])
		read, isVar, advance := readVariable(in[cur+1:])
		if isVar {
			if v, ok := lookup(read); ok {
				b.WriteString(v)
			} else {
				b.WriteString("$(" + read + ")")
			}
		} else {
			b.WriteString(read)
		}
		cur += advance
		checkpoint = cur + 1
	}
	b.WriteString(in[checkpoint:])
	return b.String()
}

// readVariable reads what follows a '$': "$" (an escaped dollar), "(NAME)" (a
// variable), or anything else, which is kept as written.
func readVariable(in string) (read string, isVar bool, advance int) {
	switch in[0] {
	case '$':
		return "$", false, 1
	case '(':
		for i := 1; i < len(in); i++ {
			if in[i] == ')' {
				return in[1:i], true, i + 1
			}
		}
		return "$(", false, 1
	}
	return "$" + in[:1], false, 1
}

// expandAll expands each string of in.
func expandAll(in []string, lookup func(string) (string, bool)) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = expand(s, lookup)
	}
	return out
}
