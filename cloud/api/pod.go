package api

// Pod is one or more containers that share a network and run on one node.
type Pod struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PodSpec   `json:"spec"`
	Status     PodStatus `json:"status,omitempty"`
}

// PodSpec is the desired state of a pod. Fields that cloudbox does not act on yet are
// kept so that ordinary Kubernetes manifests apply unchanged.
type PodSpec struct {
	InitContainers                []Container         `json:"initContainers,omitempty"`
	Containers                    []Container         `json:"containers"`
	Volumes                       []Volume            `json:"volumes,omitempty"`
	RestartPolicy                 string              `json:"restartPolicy,omitempty"`
	TerminationGracePeriodSeconds *int64              `json:"terminationGracePeriodSeconds,omitempty"`
	ActiveDeadlineSeconds         *int64              `json:"activeDeadlineSeconds,omitempty"`
	DNSPolicy                     string              `json:"dnsPolicy,omitempty"`
	NodeSelector                  map[string]string   `json:"nodeSelector,omitempty"`
	NodeName                      string              `json:"nodeName,omitempty"`
	ServiceAccountName            string              `json:"serviceAccountName,omitempty"`
	HostNetwork                   bool                `json:"hostNetwork,omitempty"`
	HostPID                       bool                `json:"hostPID,omitempty"`
	HostIPC                       bool                `json:"hostIPC,omitempty"`
	SecurityContext               *PodSecurityContext `json:"securityContext,omitempty"`
	Hostname                      string              `json:"hostname,omitempty"`
	Subdomain                     string              `json:"subdomain,omitempty"`
	Affinity                      *Affinity           `json:"affinity,omitempty"`
	SchedulerName                 string              `json:"schedulerName,omitempty"`
	Tolerations                   []Toleration        `json:"tolerations,omitempty"`
	Priority                      *int32              `json:"priority,omitempty"`
	// RuntimeClassName picks the agent driver: empty for containers, RuntimeClassVM
	// for an instance launcher pod.
	RuntimeClassName string `json:"runtimeClassName,omitempty"`
}

// Container is one process tree in a pod.
type Container struct {
	Name                     string           `json:"name"`
	Image                    string           `json:"image,omitempty"`
	Command                  []string         `json:"command,omitempty"`
	Args                     []string         `json:"args,omitempty"`
	WorkingDir               string           `json:"workingDir,omitempty"`
	Ports                    []ContainerPort  `json:"ports,omitempty"`
	EnvFrom                  []EnvFromSource  `json:"envFrom,omitempty"`
	Env                      []EnvVar         `json:"env,omitempty"`
	Resources                Resources        `json:"resources,omitempty"`
	VolumeMounts             []VolumeMount    `json:"volumeMounts,omitempty"`
	LivenessProbe            *Probe           `json:"livenessProbe,omitempty"`
	ReadinessProbe           *Probe           `json:"readinessProbe,omitempty"`
	StartupProbe             *Probe           `json:"startupProbe,omitempty"`
	Lifecycle                *Lifecycle       `json:"lifecycle,omitempty"`
	TerminationMessagePath   string           `json:"terminationMessagePath,omitempty"`
	TerminationMessagePolicy string           `json:"terminationMessagePolicy,omitempty"`
	ImagePullPolicy          string           `json:"imagePullPolicy,omitempty"`
	SecurityContext          *SecurityContext `json:"securityContext,omitempty"`
	Stdin                    bool             `json:"stdin,omitempty"`
	TTY                      bool             `json:"tty,omitempty"`
}

// ContainerPort is a port the container listens on.
type ContainerPort struct {
	Name          string `json:"name,omitempty"`
	HostPort      int32  `json:"hostPort,omitempty"`
	ContainerPort int32  `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
}

// EnvVar is one environment variable, given by value or taken from elsewhere.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource names where a variable's value comes from.
type EnvVarSource struct {
	FieldRef        *ObjectFieldSelector `json:"fieldRef,omitempty"`
	ConfigMapKeyRef *KeySelector         `json:"configMapKeyRef,omitempty"`
	SecretKeyRef    *KeySelector         `json:"secretKeyRef,omitempty"`
}

// ObjectFieldSelector picks a field of the pod (the downward API).
type ObjectFieldSelector struct {
	APIVersion string `json:"apiVersion,omitempty"`
	FieldPath  string `json:"fieldPath"`
}

// KeySelector picks one key of a ConfigMap or Secret.
type KeySelector struct {
	Name     string `json:"name"`
	Key      string `json:"key"`
	Optional *bool  `json:"optional,omitempty"`
}

// EnvFromSource imports every key of a ConfigMap or Secret as variables.
type EnvFromSource struct {
	Prefix       string    `json:"prefix,omitempty"`
	ConfigMapRef *LocalRef `json:"configMapRef,omitempty"`
	SecretRef    *LocalRef `json:"secretRef,omitempty"`
}

// LocalRef names an object in the same namespace.
type LocalRef struct {
	Name     string `json:"name"`
	Optional *bool  `json:"optional,omitempty"`
}

// Resources are the compute resources a container asks for and is held to.
type Resources struct {
	Limits   ResourceList `json:"limits,omitempty"`
	Requests ResourceList `json:"requests,omitempty"`
}

// ResourceList maps a resource name (cpu, memory, pods, ...) to a quantity.
type ResourceList map[string]Quantity

// Resource names.
const (
	ResourceCPU    = "cpu"
	ResourceMemory = "memory"
	ResourcePods   = "pods"
)

// VolumeMount mounts a pod volume into a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Volume is storage a pod's containers may mount.
type Volume struct {
	Name                  string                  `json:"name"`
	EmptyDir              *EmptyDirVolume         `json:"emptyDir,omitempty"`
	HostPath              *HostPathVolume         `json:"hostPath,omitempty"`
	ConfigMap             *ConfigMapVolume        `json:"configMap,omitempty"`
	Secret                *SecretVolume           `json:"secret,omitempty"`
	PersistentVolumeClaim *PersistentVolumeSource `json:"persistentVolumeClaim,omitempty"`
}

// EmptyDirVolume is scratch space that lives as long as the pod.
type EmptyDirVolume struct {
	Medium    string    `json:"medium,omitempty"`
	SizeLimit *Quantity `json:"sizeLimit,omitempty"`
}

// HostPathVolume mounts a path of the node.
type HostPathVolume struct {
	Path string `json:"path"`
	Type string `json:"type,omitempty"`
}

// KeyToPath projects one key of a ConfigMap or Secret to a file.
type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
	Mode *int32 `json:"mode,omitempty"`
}

// ConfigMapVolume projects a ConfigMap's keys as files.
type ConfigMapVolume struct {
	Name        string      `json:"name"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// SecretVolume projects a Secret's keys as files.
type SecretVolume struct {
	SecretName  string      `json:"secretName"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"`
	Optional    *bool       `json:"optional,omitempty"`
}

// PersistentVolumeSource mounts a claim's volume.
type PersistentVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Probe checks a container: exec, httpGet or tcpSocket, with timing.
type Probe struct {
	Handler             `json:",inline"`
	InitialDelaySeconds int32 `json:"initialDelaySeconds,omitempty"`
	TimeoutSeconds      int32 `json:"timeoutSeconds,omitempty"`
	PeriodSeconds       int32 `json:"periodSeconds,omitempty"`
	SuccessThreshold    int32 `json:"successThreshold,omitempty"`
	FailureThreshold    int32 `json:"failureThreshold,omitempty"`
}

// Handler is one action: run a command, GET a URL, or open a TCP connection.
type Handler struct {
	Exec      *ExecAction      `json:"exec,omitempty"`
	HTTPGet   *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket *TCPSocketAction `json:"tcpSocket,omitempty"`
}

// ExecAction runs a command in the container.
type ExecAction struct {
	Command []string `json:"command,omitempty"`
}

// HTTPGetAction GETs a path on the container.
type HTTPGetAction struct {
	Path        string       `json:"path,omitempty"`
	Port        IntOrString  `json:"port"`
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"`
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is one header of an HTTP probe.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction opens a TCP connection to the container.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
	Host string      `json:"host,omitempty"`
}

// Lifecycle hooks run after start and before stop.
type Lifecycle struct {
	PostStart *Handler `json:"postStart,omitempty"`
	PreStop   *Handler `json:"preStop,omitempty"`
}

// PodSecurityContext applies to every container of the pod.
type PodSecurityContext struct {
	RunAsUser    *int64 `json:"runAsUser,omitempty"`
	RunAsGroup   *int64 `json:"runAsGroup,omitempty"`
	RunAsNonRoot *bool  `json:"runAsNonRoot,omitempty"`
	FSGroup      *int64 `json:"fsGroup,omitempty"`
}

// SecurityContext applies to one container.
type SecurityContext struct {
	RunAsUser                *int64        `json:"runAsUser,omitempty"`
	RunAsGroup               *int64        `json:"runAsGroup,omitempty"`
	RunAsNonRoot             *bool         `json:"runAsNonRoot,omitempty"`
	Privileged               *bool         `json:"privileged,omitempty"`
	ReadOnlyRootFilesystem   *bool         `json:"readOnlyRootFilesystem,omitempty"`
	AllowPrivilegeEscalation *bool         `json:"allowPrivilegeEscalation,omitempty"`
	Capabilities             *Capabilities `json:"capabilities,omitempty"`
}

// Capabilities added to or dropped from the default set.
type Capabilities struct {
	Add  []string `json:"add,omitempty"`
	Drop []string `json:"drop,omitempty"`
}

// Affinity is accepted and kept; the scheduler acts on nodeSelector for now.
type Affinity struct {
	NodeAffinity    map[string]any `json:"nodeAffinity,omitempty"`
	PodAffinity     map[string]any `json:"podAffinity,omitempty"`
	PodAntiAffinity map[string]any `json:"podAntiAffinity,omitempty"`
}

// Toleration lets a pod onto a tainted node.
type Toleration struct {
	Key               string `json:"key,omitempty"`
	Operator          string `json:"operator,omitempty"`
	Value             string `json:"value,omitempty"`
	Effect            string `json:"effect,omitempty"`
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

// PodStatus is what the scheduler and the agent observe of a pod.
type PodStatus struct {
	Phase                 string            `json:"phase,omitempty"`
	Conditions            []PodCondition    `json:"conditions,omitempty"`
	Message               string            `json:"message,omitempty"`
	Reason                string            `json:"reason,omitempty"`
	HostIP                string            `json:"hostIP,omitempty"`
	PodIP                 string            `json:"podIP,omitempty"`
	StartTime             *Time             `json:"startTime,omitempty"`
	InitContainerStatuses []ContainerStatus `json:"initContainerStatuses,omitempty"`
	ContainerStatuses     []ContainerStatus `json:"containerStatuses,omitempty"`
}

// Pod phases.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
	PodUnknown   = "Unknown"
)

// Restart policies.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// DNS policies, image pull policies, protocols, termination message policies and
// toleration operators: the other closed sets of pod fields.
const (
	DNSClusterFirst            = "ClusterFirst"
	DNSClusterFirstWithHostNet = "ClusterFirstWithHostNet"
	DNSDefault                 = "Default"
	DNSNone                    = "None"

	PullAlways       = "Always"
	PullIfNotPresent = "IfNotPresent"
	PullNever        = "Never"

	ProtocolTCP  = "TCP"
	ProtocolUDP  = "UDP"
	ProtocolSCTP = "SCTP"

	TerminationMessageReadFile     = "File"
	TerminationMessageFallbackLogs = "FallbackToLogsOnError"

	TolerationOpExists = "Exists"
	TolerationOpEqual  = "Equal"
)

// Pod condition types.
const (
	PodScheduled    = "PodScheduled"
	PodInitialized  = "Initialized"
	ContainersReady = "ContainersReady"
	PodReady        = "Ready"

	ReasonUnschedulable = "Unschedulable"
)

// PodCondition is one observed aspect of a pod.
type PodCondition struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	LastProbeTime      *Time  `json:"lastProbeTime,omitempty"`
	LastTransitionTime *Time  `json:"lastTransitionTime,omitempty"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
}

// ContainerStatus is the observed state of one container.
type ContainerStatus struct {
	Name                 string         `json:"name"`
	State                ContainerState `json:"state,omitempty"`
	LastTerminationState ContainerState `json:"lastState,omitempty"`
	Ready                bool           `json:"ready"`
	RestartCount         int32          `json:"restartCount"`
	Image                string         `json:"image"`
	ImageID              string         `json:"imageID"`
	ContainerID          string         `json:"containerID,omitempty"`
	Started              *bool          `json:"started,omitempty"`
}

// ContainerState holds exactly one of waiting, running or terminated.
type ContainerState struct {
	Waiting    *ContainerStateWaiting    `json:"waiting,omitempty"`
	Running    *ContainerStateRunning    `json:"running,omitempty"`
	Terminated *ContainerStateTerminated `json:"terminated,omitempty"`
}

// ContainerStateWaiting says why a container is not running yet.
type ContainerStateWaiting struct {
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ContainerStateRunning says since when a container runs.
type ContainerStateRunning struct {
	StartedAt *Time `json:"startedAt,omitempty"`
}

// ContainerStateTerminated says how a container ended.
type ContainerStateTerminated struct {
	ExitCode    int32  `json:"exitCode"`
	Signal      int32  `json:"signal,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Message     string `json:"message,omitempty"`
	StartedAt   *Time  `json:"startedAt,omitempty"`
	FinishedAt  *Time  `json:"finishedAt,omitempty"`
	ContainerID string `json:"containerID,omitempty"`
}

// Condition returns the pod condition of type t, or nil.
func (s *PodStatus) Condition(t string) *PodCondition {
	for i := range s.Conditions {
		if s.Conditions[i].Type == t {
			return &s.Conditions[i]
		}
	}
	return nil
}

// SetCondition adds or replaces the condition of c.Type, keeping the transition time
// when the status did not change. It reports whether anything changed.
func (s *PodStatus) SetCondition(c PodCondition) bool {
	old := s.Condition(c.Type)
	if old == nil {
		if c.LastTransitionTime == nil {
			c.LastTransitionTime = Now()
		}
		s.Conditions = append(s.Conditions, c)
		return true
	}
	if old.Status == c.Status && old.Reason == c.Reason && old.Message == c.Message {
		return false
	}
	if old.Status == c.Status {
		c.LastTransitionTime = old.LastTransitionTime
	} else if c.LastTransitionTime == nil {
		c.LastTransitionTime = Now()
	}
	*old = c
	return true
}

// Requests sums the pod's container requests, taking for each resource the larger of
// the sum over containers and the largest init container (init containers run one at a
// time, before the others), as Kubernetes computes a pod's effective request.
func (p *Pod) Requests() ResourceList {
	sum := ResourceList{}
	for _, c := range p.Spec.Containers {
		for name, q := range c.Resources.Requests {
			sum[name] = sum[name].Add(q)
		}
	}
	for _, c := range p.Spec.InitContainers {
		for name, q := range c.Resources.Requests {
			if q.Cmp(sum[name]) > 0 {
				sum[name] = q
			}
		}
	}
	return sum
}

// IsTerminal reports whether the pod has finished for good.
func (p *Pod) IsTerminal() bool {
	return p.Status.Phase == PodSucceeded || p.Status.Phase == PodFailed
}
