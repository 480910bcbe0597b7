package api

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const (
	labelRule     = "must be a DNS-1123 label (lower case letters, digits and '-', starting and ending with an alphanumeric, at most 63 characters)"
	subdomainRule = "must be a DNS-1123 subdomain (lower case letters, digits, '-' and '.', starting and ending with an alphanumeric, at most 253 characters)"
	keyRule       = "must be a name of at most 63 characters (letters, digits, '-', '_' and '.', starting and ending with an alphanumeric), optionally after a DNS-1123 subdomain prefix and '/'"
	valueRule     = "must be empty or at most 63 characters (letters, digits, '-', '_' and '.', starting and ending with an alphanumeric)"
	ianaRule      = "must be an IANA service name (at most 15 characters: lower case letters, digits and '-', with at least one letter, neither starting nor ending with '-', no \"--\")"
	envRule       = "must be an environment variable name (letters, digits, '-', '.' and '_', not starting with a digit)"
)

// validPod is a pod that passes validation; each test case breaks one thing.
func validPod() *Pod {
	return &Pod{
		TypeMeta: TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: ObjectMeta{Name: "web", Namespace: "default",
			Labels:      map[string]string{"app": "web", "app.kubernetes.io/name": "web", "empty": ""},
			Annotations: map[string]string{"example.com/note": "anything goes here: !@#"}},
		Spec: PodSpec{
			InitContainers: []Container{{Name: "init", Image: "busybox"}},
			Containers: []Container{{
				Name:    "web",
				Image:   "busybox:1.36",
				Command: []string{"sleep", "3600"},
				Ports:   []ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: ProtocolTCP}, {Name: "metrics-2", ContainerPort: 9090, HostPort: 9090}},
				Env:     []EnvVar{{Name: "MY_VAR", Value: "1"}, {Name: "my.var-2"}, {Name: "POD", ValueFrom: &EnvVarSource{FieldRef: &ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources: Resources{
					Requests: ResourceList{"cpu": MustParseQuantity("100m"), "memory": MustParseQuantity("64Mi")},
					Limits:   ResourceList{"cpu": MustParseQuantity("100m"), "memory": MustParseQuantity("128Mi")},
				},
				VolumeMounts:   []VolumeMount{{Name: "data", MountPath: "/data"}, {Name: "cfg", MountPath: "/etc/cfg", ReadOnly: true}},
				LivenessProbe:  &Probe{Handler: Handler{HTTPGet: &HTTPGetAction{Path: "/", Port: FromString("http")}}, PeriodSeconds: 10},
				ReadinessProbe: &Probe{Handler: Handler{TCPSocket: &TCPSocketAction{Port: FromInt(8080)}}, SuccessThreshold: 2},
				Lifecycle:      &Lifecycle{PreStop: &Handler{Exec: &ExecAction{Command: []string{"true"}}}},
			}, {
				Name:  "sidecar",
				Image: "busybox",
				Ports: []ContainerPort{{Name: "http", ContainerPort: 8081}}, // port names are per container
			}},
			Volumes: []Volume{
				{Name: "data", EmptyDir: &EmptyDirVolume{}},
				{Name: "cfg", ConfigMap: &ConfigMapVolume{Name: "cfg", Items: []KeyToPath{{Key: "a", Path: "dir/a"}}}},
			},
			RestartPolicy:                 RestartOnFailure,
			TerminationGracePeriodSeconds: int64p(0),
			NodeSelector:                  map[string]string{LabelOS: "linux"},
			Tolerations:                   []Toleration{{Key: "dedicated", Operator: "Equal", Value: "web", Effect: TaintNoSchedule}, {Operator: "Exists"}},
		},
	}
}

func TestValidatePod(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(p *Pod)
		want   []string
	}{
		{"valid", func(p *Pod) {}, nil},
		{"valid before defaulting", func(p *Pod) {
			*p = Pod{ObjectMeta: ObjectMeta{Name: "a"}, Spec: PodSpec{Containers: []Container{{Name: "a", Image: "busybox"}}}}
		}, nil},
		{"generateName instead of name", func(p *Pod) { p.Name, p.GenerateName = "", "web-" }, nil},

		// metadata
		{"name required", func(p *Pod) { p.Name = "" }, []string{"metadata.name: required"}},
		{"name not a DNS label", func(p *Pod) { p.Name = "Web_1" }, []string{`metadata.name: "Web_1" ` + labelRule}},
		{"name with a dot", func(p *Pod) { p.Name = "web.1" }, []string{`metadata.name: "web.1" ` + labelRule}},
		{"name too long", func(p *Pod) { p.Name = strings.Repeat("a", 64) }, []string{`metadata.name: "` + strings.Repeat("a", 64) + `" ` + labelRule}},
		{"name ending in a dash", func(p *Pod) { p.Name = "web-" }, []string{`metadata.name: "web-" ` + labelRule}},
		{"bad generateName", func(p *Pod) { p.Name, p.GenerateName = "", "Web-" }, []string{`metadata.generateName: "Web-" is not a valid name prefix: generated names ` + labelRule}},
		{"bad namespace", func(p *Pod) { p.Namespace = "My_NS" }, []string{`metadata.namespace: "My_NS" ` + labelRule}},
		{"bad label keys", func(p *Pod) {
			p.Labels = map[string]string{"-app": "a", "Example.com/app": "b", "a/b/c": "c", "example.com/": "d", strings.Repeat("k", 64): "e"}
		}, []string{
			`metadata.labels: invalid label key: "-app" ` + keyRule,
			`metadata.labels: invalid label key: "Example.com/app" ` + keyRule,
			`metadata.labels: invalid label key: "a/b/c" ` + keyRule,
			`metadata.labels: invalid label key: "example.com/" ` + keyRule,
			`metadata.labels: invalid label key: "` + strings.Repeat("k", 64) + `" ` + keyRule,
		}},
		{"bad label values", func(p *Pod) {
			p.Labels = map[string]string{"a": "bad value", "b": "-x", "c": strings.Repeat("v", 64), "d": "ok_1.2-3"}
		}, []string{
			`metadata.labels[a]: "bad value" ` + valueRule,
			`metadata.labels[b]: "-x" ` + valueRule,
			`metadata.labels[c]: "` + strings.Repeat("v", 64) + `" ` + valueRule,
		}},
		{"bad annotation key", func(p *Pod) { p.Annotations = map[string]string{"not ok": "x"} },
			[]string{`metadata.annotations: invalid annotation key: "not ok" ` + keyRule}},
		{"annotations too big", func(p *Pod) { p.Annotations = map[string]string{"a": strings.Repeat("x", 256<<10)} },
			[]string{"metadata.annotations: total size 262145 must be at most 262144 bytes"}},
		{"owner reference without uid", func(p *Pod) {
			p.OwnerReferences = []OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs"}}
		}, []string{"metadata.ownerReferences[0].uid: required"}},
		{"wrong kind", func(p *Pod) { p.Kind = "Node" }, []string{`kind: "Node" does not match the object, a Pod`}},
		{"wrong apiVersion", func(p *Pod) { p.APIVersion = "apps/v1" }, []string{`apiVersion: "apps/v1" does not match the object: Pod is served as v1`}},

		// containers
		{"no containers", func(p *Pod) { p.Spec.Containers = nil }, []string{"spec.containers: required"}},
		{"container name required", func(p *Pod) { p.Spec.Containers[0].Name = "" }, []string{"spec.containers[0].name: required"}},
		{"container name not a label", func(p *Pod) { p.Spec.Containers[1].Name = "Side_Car" }, []string{`spec.containers[1].name: "Side_Car" ` + labelRule}},
		{"container names unique", func(p *Pod) { p.Spec.Containers[1].Name = "web" }, []string{`spec.containers[1].name: duplicate name "web"`}},
		{"container names unique across init containers", func(p *Pod) { p.Spec.Containers[0].Name = "init" }, []string{`spec.containers[0].name: duplicate name "init"`}},
		{"image required", func(p *Pod) { p.Spec.Containers[0].Image = "" }, []string{"spec.containers[0].image: required"}},
		{"init image required", func(p *Pod) { p.Spec.InitContainers[0].Image = "" }, []string{"spec.initContainers[0].image: required"}},
		{"image with spaces", func(p *Pod) { p.Spec.Containers[0].Image = " busybox" }, []string{`spec.containers[0].image: " busybox" must not have leading or trailing whitespace`}},
		{"bad imagePullPolicy", func(p *Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" },
			[]string{`spec.containers[0].imagePullPolicy: "Sometimes" must be one of Always, IfNotPresent, Never`}},
		{"relative workingDir", func(p *Pod) { p.Spec.Containers[0].WorkingDir = "app" }, []string{`spec.containers[0].workingDir: "app" must be an absolute path`}},

		// ports
		{"port 0", func(p *Pod) { p.Spec.Containers[0].Ports[0].ContainerPort = 0 }, []string{"spec.containers[0].ports[0].containerPort: 0 must be between 1 and 65535"}},
		{"port too big", func(p *Pod) { p.Spec.Containers[0].Ports[1].ContainerPort = 65536 }, []string{"spec.containers[0].ports[1].containerPort: 65536 must be between 1 and 65535"}},
		{"negative hostPort", func(p *Pod) { p.Spec.Containers[0].Ports[1].HostPort = -1 }, []string{"spec.containers[0].ports[1].hostPort: -1 must be between 1 and 65535"}},
		{"port name upper case", func(p *Pod) { p.Spec.Containers[0].Ports[0].Name = "HTTP" }, []string{`spec.containers[0].ports[0].name: "HTTP" ` + ianaRule}},
		{"port name without a letter", func(p *Pod) { p.Spec.Containers[0].Ports[0].Name = "8080" }, []string{`spec.containers[0].ports[0].name: "8080" ` + ianaRule}},
		{"port name with --", func(p *Pod) { p.Spec.Containers[0].Ports[0].Name = "a--b" }, []string{`spec.containers[0].ports[0].name: "a--b" ` + ianaRule}},
		{"port name too long", func(p *Pod) { p.Spec.Containers[0].Ports[0].Name = "abcdefghijklmnop" }, []string{`spec.containers[0].ports[0].name: "abcdefghijklmnop" ` + ianaRule}},
		{"port names unique", func(p *Pod) { p.Spec.Containers[0].Ports[1].Name = "http" }, []string{`spec.containers[0].ports[1].name: duplicate name "http"`}},
		{"bad protocol", func(p *Pod) { p.Spec.Containers[0].Ports[0].Protocol = "HTTP" }, []string{`spec.containers[0].ports[0].protocol: "HTTP" must be one of TCP, UDP, SCTP`}},
		{"SCTP", func(p *Pod) { p.Spec.Containers[0].Ports[0].Protocol = ProtocolSCTP }, nil},

		// env
		{"env name required", func(p *Pod) { p.Spec.Containers[0].Env[0].Name = "" }, []string{"spec.containers[0].env[0].name: required"}},
		{"env name starting with a digit", func(p *Pod) { p.Spec.Containers[0].Env[1].Name = "1X" }, []string{`spec.containers[0].env[1].name: "1X" ` + envRule}},
		{"env name with a space", func(p *Pod) { p.Spec.Containers[0].Env[1].Name = "MY VAR" }, []string{`spec.containers[0].env[1].name: "MY VAR" ` + envRule}},
		{"env name ..", func(p *Pod) { p.Spec.Containers[0].Env[1].Name = ".." }, []string{`spec.containers[0].env[1].name: ".." ` + envRule}},
		{"value and valueFrom", func(p *Pod) { p.Spec.Containers[0].Env[2].Value = "x" }, []string{"spec.containers[0].env[2].valueFrom: may not be set when value is not empty"}},
		{"valueFrom without source", func(p *Pod) { p.Spec.Containers[0].Env[2].ValueFrom = &EnvVarSource{} },
			[]string{"spec.containers[0].env[2].valueFrom: exactly one of fieldRef, configMapKeyRef or secretKeyRef is required; found 0"}},
		{"secretKeyRef without key", func(p *Pod) {
			p.Spec.Containers[0].Env[2].ValueFrom = &EnvVarSource{SecretKeyRef: &KeySelector{Name: "s"}}
		}, []string{"spec.containers[0].env[2].valueFrom.secretKeyRef.key: required"}},
		{"envFrom with both", func(p *Pod) {
			p.Spec.Containers[0].EnvFrom = []EnvFromSource{{ConfigMapRef: &LocalRef{Name: "a"}, SecretRef: &LocalRef{Name: "b"}}}
		}, []string{"spec.containers[0].envFrom[0]: exactly one of configMapRef or secretRef is required; found 2"}},

		// volumes and mounts
		{"volume names unique", func(p *Pod) { p.Spec.Volumes[1].Name = "data" }, []string{
			`spec.volumes[1].name: duplicate name "data"`,
			`spec.containers[0].volumeMounts[1].name: volume "cfg" is not declared in spec.volumes`,
		}},
		{"volume name required", func(p *Pod) { p.Spec.Volumes[0].Name = "" }, []string{
			"spec.volumes[0].name: required",
			`spec.containers[0].volumeMounts[0].name: volume "data" is not declared in spec.volumes`,
		}},
		{"volume without source", func(p *Pod) { p.Spec.Volumes[0].EmptyDir = nil }, []string{
			"spec.volumes[0]: exactly one volume source is required (emptyDir, hostPath, configMap, secret or persistentVolumeClaim); found none",
		}},
		{"volume with two sources", func(p *Pod) { p.Spec.Volumes[0].HostPath = &HostPathVolume{Path: "/srv"} }, []string{
			"spec.volumes[0]: exactly one volume source is required; found 2: emptyDir, hostPath",
		}},
		{"relative hostPath", func(p *Pod) { p.Spec.Volumes[0] = Volume{Name: "data", HostPath: &HostPathVolume{Path: "srv"}} }, []string{
			`spec.volumes[0].hostPath.path: "srv" must be an absolute path`,
		}},
		{"configMap item escaping", func(p *Pod) { p.Spec.Volumes[1].ConfigMap.Items[0].Path = "../a" }, []string{
			`spec.volumes[1].configMap.items[0].path: "../a" must not contain '..'`,
		}},
		{"secret without name", func(p *Pod) { p.Spec.Volumes[1] = Volume{Name: "cfg", Secret: &SecretVolume{}} }, []string{
			"spec.volumes[1].secret.secretName: required",
		}},
		{"mount of an undeclared volume", func(p *Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "cache" }, []string{
			`spec.containers[0].volumeMounts[0].name: volume "cache" is not declared in spec.volumes`,
		}},
		{"relative mountPath", func(p *Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "data" }, []string{
			`spec.containers[0].volumeMounts[0].mountPath: "data" must be an absolute path`,
		}},
		{"mountPath required", func(p *Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "" }, []string{
			"spec.containers[0].volumeMounts[0].mountPath: required",
		}},
		{"mountPath twice", func(p *Pod) { p.Spec.Containers[0].VolumeMounts[1].MountPath = "/data/" }, []string{
			`spec.containers[0].volumeMounts[1].mountPath: "/data/" is mounted twice`,
		}},

		// probes and hooks
		{"probe without handler", func(p *Pod) { p.Spec.Containers[0].LivenessProbe.HTTPGet = nil }, []string{
			"spec.containers[0].livenessProbe: exactly one handler is required (exec, httpGet or tcpSocket); found none",
		}},
		{"probe with two handlers", func(p *Pod) { p.Spec.Containers[0].ReadinessProbe.Exec = &ExecAction{Command: []string{"true"}} }, []string{
			"spec.containers[0].readinessProbe: exactly one handler is required; found 2: exec, tcpSocket",
		}},
		{"probe port 0", func(p *Pod) { p.Spec.Containers[0].LivenessProbe.HTTPGet.Port = FromInt(0) }, []string{
			"spec.containers[0].livenessProbe.httpGet.port: 0 must be between 1 and 65535",
		}},
		{"probe port name", func(p *Pod) { p.Spec.Containers[0].ReadinessProbe.TCPSocket.Port = FromString("Http") }, []string{
			`spec.containers[0].readinessProbe.tcpSocket.port: "Http" ` + ianaRule,
		}},
		{"exec without command", func(p *Pod) {
			p.Spec.Containers[0].StartupProbe = &Probe{Handler: Handler{Exec: &ExecAction{}}}
		}, []string{"spec.containers[0].startupProbe.exec.command: required"}},
		{"negative period", func(p *Pod) { p.Spec.Containers[0].LivenessProbe.PeriodSeconds = -1 }, []string{
			"spec.containers[0].livenessProbe.periodSeconds: -1 must be greater than or equal to 0",
		}},
		{"liveness success threshold", func(p *Pod) { p.Spec.Containers[0].LivenessProbe.SuccessThreshold = 2 }, []string{
			"spec.containers[0].livenessProbe.successThreshold: 2 must be 1 for liveness and startup probes",
		}},
		{"probe in an init container", func(p *Pod) { p.Spec.InitContainers[0].ReadinessProbe = p.Spec.Containers[0].ReadinessProbe }, []string{
			"spec.initContainers[0].readinessProbe: not allowed in init containers",
		}},
		{"hook without handler", func(p *Pod) { p.Spec.Containers[0].Lifecycle.PreStop.Exec = nil }, []string{
			"spec.containers[0].lifecycle.preStop: exactly one handler is required (exec, httpGet or tcpSocket); found none",
		}},

		// resources
		{"request above limit", func(p *Pod) { p.Spec.Containers[0].Resources.Requests["cpu"] = MustParseQuantity("2") }, []string{
			"spec.containers[0].resources.requests[cpu]: 2 must be less than or equal to the cpu limit of 100m",
		}},
		{"request without limit", func(p *Pod) { delete(p.Spec.Containers[0].Resources.Limits, "cpu") }, nil},
		{"negative limit", func(p *Pod) { p.Spec.Containers[0].Resources.Limits["memory"] = NewMilliQuantity(-1000) }, []string{
			"spec.containers[0].resources.limits[memory]: -1 must not be negative",
			"spec.containers[0].resources.requests[memory]: 64Mi must be less than or equal to the memory limit of -1",
		}},
		{"negative request", func(p *Pod) {
			p.Spec.Containers[1].Resources.Requests = ResourceList{"cpu": MustParseQuantity("1").Sub(MustParseQuantity("2"))}
		}, []string{
			"spec.containers[1].resources.requests[cpu]: -1 must not be negative",
		}},
		{"bad resource name", func(p *Pod) {
			p.Spec.Containers[1].Resources.Requests = ResourceList{"bad name": MustParseQuantity("1")}
		}, []string{
			`spec.containers[1].resources.requests[bad name]: invalid resource name: "bad name" ` + keyRule,
		}},
		{"extended resource", func(p *Pod) {
			p.Spec.Containers[1].Resources.Limits = ResourceList{"example.com/gpu": MustParseQuantity("1")}
		}, nil},

		// pod-level fields
		{"bad restartPolicy", func(p *Pod) { p.Spec.RestartPolicy = "Sometimes" }, []string{`spec.restartPolicy: "Sometimes" must be one of Always, OnFailure, Never`}},
		{"bad dnsPolicy", func(p *Pod) { p.Spec.DNSPolicy = "Google" }, []string{`spec.dnsPolicy: "Google" must be one of ClusterFirst, ClusterFirstWithHostNet, Default, None`}},
		{"negative grace period", func(p *Pod) { p.Spec.TerminationGracePeriodSeconds = int64p(-1) }, []string{"spec.terminationGracePeriodSeconds: -1 must be greater than or equal to 0"}},
		{"zero deadline", func(p *Pod) { p.Spec.ActiveDeadlineSeconds = int64p(0) }, []string{"spec.activeDeadlineSeconds: 0 must be greater than 0"}},
		{"bad nodeName", func(p *Pod) { p.Spec.NodeName = "Node_1" }, []string{`spec.nodeName: "Node_1" ` + subdomainRule}},
		{"nodeName with dots", func(p *Pod) { p.Spec.NodeName = "node-1.example.com" }, nil},
		{"bad nodeSelector", func(p *Pod) { p.Spec.NodeSelector = map[string]string{"zone": "a b"} }, []string{`spec.nodeSelector[zone]: "a b" ` + valueRule}},
		{"Exists toleration with a value", func(p *Pod) { p.Spec.Tolerations[1].Value = "x" }, []string{`spec.tolerations[1].value: must be empty when operator is Exists, not "x"`}},
		{"bad toleration operator", func(p *Pod) { p.Spec.Tolerations[0].Operator = "In" }, []string{`spec.tolerations[0].operator: "In" must be one of Exists, Equal`}},
		{"toleration seconds without NoExecute", func(p *Pod) { p.Spec.Tolerations[0].TolerationSeconds = int64p(5) }, []string{"spec.tolerations[0].tolerationSeconds: may only be set when effect is NoExecute"}},

		// several faults are all reported
		{"several", func(p *Pod) {
			p.Name = ""
			p.Spec.Containers[0].Image = ""
			p.Spec.Containers[1].Ports[0].ContainerPort = 0
			p.Spec.RestartPolicy = "x"
		}, []string{
			"metadata.name: required",
			"spec.containers[0].image: required",
			"spec.containers[1].ports[0].containerPort: 0 must be between 1 and 65535",
			`spec.restartPolicy: "x" must be one of Always, OnFailure, Never`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validPod()
			tt.mutate(p)
			checkFieldErrors(t, Validate(p), tt.want)
		})
	}
}

// checkFieldErrors compares err, which must be nil or FieldErrors, with want.
func checkFieldErrors(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		if want != nil {
			t.Errorf("no error, want %q", want)
		}
		return
	}
	var list FieldErrors
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, not FieldErrors: %v", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(err, ErrInvalid) is false")
	}
	var got []string
	for _, e := range list {
		got = append(got, e.Error())
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n got %q\nwant %q", got, want)
	}
}

func TestValidateNodeAndNamespace(t *testing.T) {
	tests := []struct {
		name string
		obj  Object
		want []string
	}{
		{"node", &Node{ObjectMeta: ObjectMeta{Name: "node-1.example.com"}, Spec: NodeSpec{PodCIDR: "10.88.1.0/24",
			Taints: []Taint{{Key: "dedicated", Value: "db", Effect: TaintNoSchedule}}}}, nil},
		{"node name not a subdomain", &Node{ObjectMeta: ObjectMeta{Name: "Node_1"}}, []string{`metadata.name: "Node_1" ` + subdomainRule}},
		{"node name too long", &Node{ObjectMeta: ObjectMeta{Name: strings.Repeat("a.", 127)}}, []string{`metadata.name: "` + strings.Repeat("a.", 127) + `" ` + subdomainRule}},
		{"node in a namespace", &Node{ObjectMeta: ObjectMeta{Name: "n", Namespace: "default"}}, []string{"metadata.namespace: must be empty: nodes are not namespaced"}},
		{"node podCIDR", &Node{ObjectMeta: ObjectMeta{Name: "n"}, Spec: NodeSpec{PodCIDR: "10.88.1.0"}}, []string{`spec.podCIDR: "10.88.1.0" is not a CIDR such as 10.88.1.0/24`}},
		{"node taints", &Node{ObjectMeta: ObjectMeta{Name: "n"}, Spec: NodeSpec{Taints: []Taint{{Key: "a"}, {Effect: "Never"}}}}, []string{
			"spec.taints[0].effect: required",
			"spec.taints[1].key: required",
			`spec.taints[1].effect: "Never" must be one of NoSchedule, PreferNoSchedule, NoExecute`,
		}},
		{"node capacity", &Node{ObjectMeta: ObjectMeta{Name: "n"}, Status: NodeStatus{Capacity: ResourceList{"cpu": NewMilliQuantity(-5)}}}, []string{
			"status.capacity[cpu]: -5m must not be negative",
		}},
		{"namespace", &Namespace{ObjectMeta: ObjectMeta{Name: "demo"}, Status: NamespaceStatus{Phase: NamespaceActive}}, nil},
		{"namespace name with a dot", &Namespace{ObjectMeta: ObjectMeta{Name: "a.b"}}, []string{`metadata.name: "a.b" ` + labelRule}},
		{"namespace phase", &Namespace{ObjectMeta: ObjectMeta{Name: "a"}, Status: NamespaceStatus{Phase: "Gone"}}, []string{`status.phase: "Gone" must be one of Active, Terminating`}},
		{"unregistered type", &testUnregistered{}, []string{"kind: *api.testUnregistered is not a registered kind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkFieldErrors(t, Validate(tt.obj), tt.want)
		})
	}
}

type testUnregistered struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
}

func TestValidateUpdate(t *testing.T) {
	bound := func(p *Pod) { p.Spec.NodeName = "n1" }
	tests := []struct {
		name        string
		old, mutate func(p *Pod)
		want        []string
	}{
		{"nothing changed", nil, func(p *Pod) {}, nil},
		{"labels and annotations may change", nil, func(p *Pod) { p.Labels = map[string]string{"x": "y"}; p.Annotations = nil }, nil},
		{"images may change", nil, func(p *Pod) { p.Spec.Containers[0].Image = "busybox:1.37"; p.Spec.InitContainers[0].Image = "alpine" }, nil},
		{"deadline and tolerations may change", nil, func(p *Pod) { p.Spec.ActiveDeadlineSeconds = int64p(60); p.Spec.Tolerations = nil }, nil},
		{"binding sets nodeName", nil, bound, nil},
		{"status may change", nil, func(p *Pod) { p.Status.Phase = PodRunning }, nil},
		{"empty list and nil list are the same", nil, func(p *Pod) { p.Spec.Containers[1].Env = []EnvVar{} }, nil},
		{"nodeName may not change once set", bound, func(p *Pod) { p.Spec.NodeName = "n2" }, []string{`spec.nodeName: may not change once set (was "n1")`}},
		{"nodeName may not be cleared", bound, func(p *Pod) { p.Spec.NodeName = "" }, []string{`spec.nodeName: may not change once set (was "n1")`}},
		{"name", nil, func(p *Pod) { p.Name = "other" }, []string{`metadata.name: field is immutable (was "web")`}},
		{"namespace", nil, func(p *Pod) { p.Namespace = "other" }, []string{`metadata.namespace: field is immutable (was "default")`}},
		{"uid", func(p *Pod) { p.UID = "u1" }, func(p *Pod) { p.UID = "u2" }, []string{`metadata.uid: field is immutable (was "u1")`}},
		{"command", nil, func(p *Pod) { p.Spec.Containers[0].Command = []string{"true"} }, []string{"spec: " + podUpdateMessage}},
		{"container added", nil, func(p *Pod) { p.Spec.Containers = append(p.Spec.Containers, Container{Name: "x", Image: "busybox"}) }, []string{"spec: " + podUpdateMessage}},
		{"resources", nil, func(p *Pod) { p.Spec.Containers[0].Resources.Limits["cpu"] = MustParseQuantity("2") }, []string{"spec: " + podUpdateMessage}},
		{"restartPolicy", nil, func(p *Pod) { p.Spec.RestartPolicy = RestartNever }, []string{"spec: " + podUpdateMessage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := validPod()
			if tt.old != nil {
				tt.old(old)
			}
			next := DeepCopy(old).(*Pod)
			tt.mutate(next)
			checkFieldErrors(t, ValidateUpdate(old, next), tt.want)
			if tt.want == nil {
				// The old object must not have been touched by the comparison.
				again := validPod()
				if tt.old != nil {
					tt.old(again)
				}
				if !reflect.DeepEqual(old, again) {
					t.Errorf("ValidateUpdate modified the old object")
				}
			}
		})
	}

	n := &Node{ObjectMeta: ObjectMeta{Name: "n1", UID: "u"}}
	n2 := DeepCopy(n).(*Node)
	n2.Spec.Unschedulable = true
	checkFieldErrors(t, ValidateUpdate(n, n2), nil)
	checkFieldErrors(t, ValidateUpdate(n, validPod()), []string{"kind: may not change from Node to Pod"})
}
