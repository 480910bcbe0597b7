package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("deployment", func(d Deps) Runner { return NewDeploymentController(d) })
}

// DeploymentController rolls each Deployment's template out through one ReplicaSet
// per template revision, by the Deployment's strategy, and reports its status and
// its Available and Progressing conditions.
type DeploymentController struct {
	base
	deployments client.Typed[*api.Deployment]
	replicaSets client.Typed[*api.ReplicaSet]
	pods        client.Typed[*api.Pod]
}

// NewDeploymentController returns a controller reading Deployments, ReplicaSets and
// pods from d's factory.
func NewDeploymentController(d Deps) *DeploymentController {
	c := &DeploymentController{base: newBase(d, "deployment-controller", 4), deployments: client.For[*api.Deployment](d.Factory),
		replicaSets: client.For[*api.ReplicaSet](d.Factory), pods: client.For[*api.Pod](d.Factory)}
	c.deployments.AddHandler(onChange(func(dep *api.Deployment) { c.enqueue(dep) }))
	c.replicaSets.AddHandler(client.TypedHandler[*api.ReplicaSet]{
		OnAdd:    c.enqueueOwner,
		OnUpdate: func(old, rs *api.ReplicaSet) { c.enqueueOwner(old); c.enqueueOwner(rs) },
		OnDelete: c.enqueueOwner,
	})
	// Recreate waits for old pods to be gone; only their deletion matters here.
	c.pods.AddHandler(client.TypedHandler[*api.Pod]{OnDelete: func(p *api.Pod) {
		if ref := p.ControllerRef(); ref != nil && ref.Kind == "ReplicaSet" {
			if rs, ok := c.replicaSets.GetByName(p.Namespace, ref.Name); ok {
				c.enqueueOwner(rs)
			}
		}
	}})
	return c
}

// Run reconciles until ctx is cancelled.
func (c *DeploymentController) Run(ctx context.Context) { c.runQueue(ctx, c.sync) }

// enqueueOwner queues the Deployment controlling rs, or for an orphan every
// Deployment of its namespace whose selector matches it.
func (c *DeploymentController) enqueueOwner(rs *api.ReplicaSet) {
	enqueueOwnerOrAdopters(&c.base, "Deployment", rs, c.deployments, func(d *api.Deployment) *api.LabelSelector { return d.Spec.Selector })
}

func (c *DeploymentController) sync(ctx context.Context, key string) error {
	cur, ok := c.deployments.Get(key)
	if !ok {
		return nil
	}
	d := api.DeepCopyOf(cur)
	if d.DeletionTimestamp != nil {
		return nil
	}
	rss, err := c.claimReplicaSets(ctx, d)
	if err != nil {
		return err
	}
	// A paused Deployment still scales; a scaling event is applied on its own
	// before the rollout moves on, so it is spread over the ReplicaSets as they are.
	if d.Spec.Paused || isScalingEvent(d, rss) {
		appsNewRS, old := findNewRS(d, rss)
		if err := c.scale(ctx, d, appsNewRS, old); err != nil {
			return err
		}
		return c.syncStatus(ctx, d, appsNewRS, old, false)
	}
	if d.Spec.Strategy.Type == api.RecreateStrategy {
		return c.rolloutRecreate(ctx, d, rss)
	}
	return c.rolloutRolling(ctx, d, rss)
}

// claimReplicaSets returns the ReplicaSets d controls, adopting matching orphans and
// releasing those its selector no longer matches.
func (c *DeploymentController) claimReplicaSets(ctx context.Context, d *api.Deployment) ([]*api.ReplicaSet, error) {
	sel, err := d.Spec.Selector.AsSelector()
	if err != nil {
		return nil, nil
	}
	return claim(ctx, c.client, c.log, d, sel, c.replicaSets.InNamespace(d.Namespace), func(*api.ReplicaSet) bool { return true })
}

// TemplateHash returns the pod-template-hash of a template: an FNV-1a hash of its
// JSON and of the collision count, written in the alphabet of generated names.
func TemplateHash(t *api.PodTemplateSpec, collisionCount *int32) string {
	h := fnv.New32a()
	b, _ := json.Marshal(t)
	h.Write(b)
	if collisionCount != nil {
		fmt.Fprint(h, *collisionCount)
	}
	s := []byte(strconv.FormatUint(uint64(h.Sum32()), 10))
	for i := range s {
		s[i] = suffixAlphabet[int(s[i])%len(suffixAlphabet)]
	}
	return string(s)
}

// sameTemplate reports whether rs runs d's template, ignoring the hash label.
func sameTemplate(rs *api.ReplicaSet, d *api.Deployment) bool {
	a := api.DeepCopyOf(&api.Pod{ObjectMeta: rs.Spec.Template.Metadata, Spec: rs.Spec.Template.Spec})
	delete(a.Labels, api.LabelPodTemplateHash)
	ja, _ := json.Marshal(api.PodTemplateSpec{Metadata: a.ObjectMeta, Spec: a.Spec})
	jb, _ := json.Marshal(d.Spec.Template)
	return string(ja) == string(jb)
}

// findNewRS splits rss into the ReplicaSet of d's current template (nil if none yet)
// and the others, oldest first.
func findNewRS(d *api.Deployment, rss []*api.ReplicaSet) (*api.ReplicaSet, []*api.ReplicaSet) {
	sort.Slice(rss, func(i, j int) bool {
		ci, cj := rss[i].CreationTimestamp, rss[j].CreationTimestamp
		if ci != nil && cj != nil && !ci.Equal(cj.Time) {
			return ci.Before(cj.Time)
		}
		return rss[i].Name < rss[j].Name
	})
	var appsNewRS *api.ReplicaSet
	var old []*api.ReplicaSet
	for _, rs := range rss {
		if appsNewRS == nil && sameTemplate(rs, d) {
			appsNewRS = rs
		} else {
			old = append(old, rs)
		}
	}
	return appsNewRS, old
}

// Revision returns the revision annotation of obj, 0 if it has none.
func Revision(obj api.Object) int64 {
	n, _ := strconv.ParseInt(obj.GetObjectMeta().Annotations[api.AnnotationRevision], 10, 64)
	return n
}

func appsMaxRevision(rss []*api.ReplicaSet) int64 {
	var m int64
	for _, rs := range rss {
		m = max(m, Revision(rs))
	}
	return m
}

func appsReplicas(rs *api.ReplicaSet) int {
	if rs == nil {
		return 0
	}
	return int(api.Int32Value(rs.Spec.Replicas, 1))
}

func appsSumReplicas(rss []*api.ReplicaSet) (spec, available int) {
	for _, rs := range rss {
		if rs != nil {
			spec += appsReplicas(rs)
			available += int(rs.Status.AvailableReplicas)
		}
	}
	return spec, available
}

// getNewRS returns the ReplicaSet of d's template, bringing its revision, change cause
// and minReadySeconds up to date, or creates it with the given replicas when mayCreate
// is set. It returns nil, nil when there is none and mayCreate is not set.
func (c *DeploymentController) getNewRS(ctx context.Context, d *api.Deployment, appsNewRS *api.ReplicaSet, old []*api.ReplicaSet, mayCreate bool, initial int) (*api.ReplicaSet, error) {
	rev := strconv.FormatInt(appsMaxRevision(old)+1, 10)
	if appsNewRS != nil {
		cause := d.Annotations[api.AnnotationChangeCause]
		if Revision(appsNewRS) >= appsMaxRevision(old)+1 && appsNewRS.Spec.MinReadySeconds == d.Spec.MinReadySeconds &&
			(cause == "" || appsNewRS.Annotations[api.AnnotationChangeCause] == cause) {
			return appsNewRS, nil
		}
		next := api.DeepCopyOf(appsNewRS)
		if next.Annotations == nil {
			next.Annotations = map[string]string{}
		}
		if Revision(appsNewRS) < appsMaxRevision(old)+1 {
			next.Annotations[api.AnnotationRevision] = rev
		}
		if cause != "" {
			next.Annotations[api.AnnotationChangeCause] = cause
		}
		next.Spec.MinReadySeconds = d.Spec.MinReadySeconds
		out, err := client.Update(ctx, c.client, next)
		if err != nil {
			return nil, fmt.Errorf("updating replicaset %s: %w", appsNewRS.Key(), err)
		}
		return out, nil
	}
	if !mayCreate {
		return nil, nil
	}
	hash := TemplateHash(&d.Spec.Template, d.Status.CollisionCount)
	rs := &api.ReplicaSet{TypeMeta: api.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}}
	rs.Name = d.Name + "-" + hash
	rs.Namespace = d.Namespace
	rs.OwnerReferences = []api.OwnerReference{OwnerRef(d)}
	rs.Annotations = map[string]string{api.AnnotationRevision: rev}
	if cause := d.Annotations[api.AnnotationChangeCause]; cause != "" {
		rs.Annotations[api.AnnotationChangeCause] = cause
	}
	tmpl := api.DeepCopyOf(&api.Pod{ObjectMeta: d.Spec.Template.Metadata, Spec: d.Spec.Template.Spec})
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[api.LabelPodTemplateHash] = hash
	rs.Labels = tmpl.Labels
	rs.Spec.Template = api.PodTemplateSpec{Metadata: tmpl.ObjectMeta, Spec: tmpl.Spec}
	sel := api.DeepCopyOf(&api.Deployment{Spec: api.DeploymentSpec{Selector: d.Spec.Selector}}).Spec.Selector
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[api.LabelPodTemplateHash] = hash
	rs.Spec.Selector = sel
	n := int32(initial)
	rs.Spec.Replicas = &n
	rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	setReplicasAnnotations(rs, d)
	out, err := client.Create(ctx, c.client, rs)
	if client.IsAlreadyExists(err) {
		ex, gerr := client.Get[*api.ReplicaSet](ctx, c.client, rs.Namespace, rs.Name)
		if gerr != nil {
			return nil, gerr
		}
		if ex.IsControlledBy(d.UID) && sameTemplate(ex, d) {
			return ex, nil
		}
		// A different ReplicaSet holds the name: count the collision so that the
		// next hash differs.
		next := api.DeepCopyOf(d)
		cc := api.Int32Value(next.Status.CollisionCount, 0) + 1
		next.Status.CollisionCount = &cc
		if _, err := c.client.UpdateStatus(ctx, next); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("replicaset %s exists with another template; collision count now %d", rs.Key(), cc)
	}
	if err != nil {
		return nil, fmt.Errorf("creating replicaset %s: %w", rs.Key(), err)
	}
	c.log.Info("created replicaset", zap.String("deployment", d.Key()), zap.String("replicaset", rs.Name), zap.String("revision", rev))
	if n > 0 {
		c.recorder.Event(d, api.EventNormal, "ScalingReplicaSet", "Scaled up replica set %s to %d", rs.Name, n)
	}
	return out, nil
}

func (c *DeploymentController) rolloutRolling(ctx context.Context, d *api.Deployment, rss []*api.ReplicaSet) error {
	appsNewRS, old := findNewRS(d, rss)
	want := int(api.Int32Value(d.Spec.Replicas, 1))
	surge, unavailable := d.MaxSurgeAndUnavailable()
	total, _ := appsSumReplicas(rss)
	// How far the new ReplicaSet may grow now: up to want, keeping the total within
	// want + surge.
	target := func(cur int) int {
		if cur >= want {
			return want
		}
		room := want + surge - total
		if room <= 0 {
			return cur
		}
		return cur + min(room, want-cur)
	}
	created := appsNewRS == nil
	appsNewRS, err := c.getNewRS(ctx, d, appsNewRS, old, true, target(0))
	if err != nil || appsNewRS == nil {
		return err
	}
	if !created {
		if scaled, err := c.scaleRS(ctx, d, appsNewRS, target(appsReplicas(appsNewRS))); err != nil || scaled {
			if err != nil {
				return err
			}
			return c.syncStatus(ctx, d, appsNewRS, old, false)
		}
	} else {
		return c.syncStatus(ctx, d, appsNewRS, old, false)
	}

	scaled, err := c.scaleDownOld(ctx, d, appsNewRS, old, want, unavailable)
	if err != nil {
		return err
	}
	if scaled {
		return c.syncStatus(ctx, d, appsNewRS, old, false)
	}
	if deploymentComplete(d, appsNewRS, old) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncStatus(ctx, d, appsNewRS, old, false)
}

// scaleDownOld scales old ReplicaSets down as far as availability allows: first
// their unavailable appsReplicas, then available ones down to want - maxUnavailable
// available pods in all.
func (c *DeploymentController) scaleDownOld(ctx context.Context, d *api.Deployment, appsNewRS *api.ReplicaSet, old []*api.ReplicaSet, want, maxUnavailable int) (bool, error) {
	oldTotal, _ := appsSumReplicas(old)
	if oldTotal == 0 {
		return false, nil
	}
	// A ReplicaSet whose controller has not caught up with its spec reports counts
	// that may be too high; scaling down on them could go below the minimum.
	for _, rs := range append([]*api.ReplicaSet{appsNewRS}, old...) {
		if rs.Status.ObservedGeneration < rs.Generation {
			return false, nil
		}
	}
	all := append([]*api.ReplicaSet{appsNewRS}, old...)
	allTotal, allAvailable := appsSumReplicas(all)
	minAvailable := want - maxUnavailable
	newUnavailable := appsReplicas(appsNewRS) - int(appsNewRS.Status.AvailableReplicas)
	maxScaleDown := allTotal - minAvailable - newUnavailable
	if maxScaleDown <= 0 {
		return false, nil
	}
	scaled := false
	// Unhealthy old appsReplicas go first: removing them costs no availability.
	for _, rs := range old {
		if maxScaleDown <= 0 {
			break
		}
		unhealthy := appsReplicas(rs) - int(rs.Status.AvailableReplicas)
		if unhealthy <= 0 {
			continue
		}
		n := min(unhealthy, maxScaleDown)
		if _, err := c.scaleRS(ctx, d, rs, appsReplicas(rs)-n); err != nil {
			return scaled, err
		}
		maxScaleDown -= n
		scaled = true
	}
	if scaled {
		return true, nil // decide the rest on fresh status
	}
	budget := allAvailable - minAvailable
	for _, rs := range old {
		if budget <= 0 {
			break
		}
		if appsReplicas(rs) == 0 {
			continue
		}
		n := min(appsReplicas(rs), budget)
		if _, err := c.scaleRS(ctx, d, rs, appsReplicas(rs)-n); err != nil {
			return scaled, err
		}
		budget -= n
		scaled = true
	}
	return scaled, nil
}

func (c *DeploymentController) rolloutRecreate(ctx context.Context, d *api.Deployment, rss []*api.ReplicaSet) error {
	appsNewRS, old := findNewRS(d, rss)
	scaled := false
	for _, rs := range old {
		s, err := c.scaleRS(ctx, d, rs, 0)
		if err != nil {
			return err
		}
		scaled = scaled || s
	}
	if scaled {
		return c.syncStatus(ctx, d, appsNewRS, old, false)
	}
	// The new pods start only once every old one is gone.
	for _, rs := range old {
		for _, p := range c.pods.ControlledBy(rs.UID) {
			if !p.IsTerminal() {
				return c.syncStatus(ctx, d, appsNewRS, old, false)
			}
		}
	}
	want := int(api.Int32Value(d.Spec.Replicas, 1))
	created := appsNewRS == nil
	appsNewRS, err := c.getNewRS(ctx, d, appsNewRS, old, true, want)
	if err != nil || appsNewRS == nil {
		return err
	}
	if !created {
		if _, err := c.scaleRS(ctx, d, appsNewRS, want); err != nil {
			return err
		}
	}
	if deploymentComplete(d, appsNewRS, old) {
		if err := c.cleanup(ctx, d, old); err != nil {
			return err
		}
	}
	return c.syncStatus(ctx, d, appsNewRS, old, false)
}

// deploymentComplete reports whether every replica is updated and available and no
// old one remains.
func deploymentComplete(d *api.Deployment, appsNewRS *api.ReplicaSet, old []*api.ReplicaSet) bool {
	want := int32(appsReplicas(&api.ReplicaSet{Spec: api.ReplicaSetSpec{Replicas: d.Spec.Replicas}}))
	if appsNewRS == nil {
		return false
	}
	for _, rs := range old {
		if rs.Status.Replicas > 0 || appsReplicas(rs) > 0 {
			return false
		}
	}
	return appsReplicas(appsNewRS) == int(want) && appsNewRS.Status.Replicas == want && appsNewRS.Status.AvailableReplicas == want &&
		appsNewRS.Status.ObservedGeneration >= appsNewRS.Generation
}

// cleanup deletes the oldest old ReplicaSets with no appsReplicas beyond the
// revisionHistoryLimit.
func (c *DeploymentController) cleanup(ctx context.Context, d *api.Deployment, old []*api.ReplicaSet) error {
	limit := int(api.Int32Value(d.Spec.RevisionHistoryLimit, api.DefaultRevisionHistoryLimit))
	var idle []*api.ReplicaSet
	for _, rs := range old {
		if appsReplicas(rs) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			idle = append(idle, rs)
		}
	}
	if len(idle) <= limit {
		return nil
	}
	sort.SliceStable(idle, func(i, j int) bool { return Revision(idle[i]) < Revision(idle[j]) })
	for _, rs := range idle[:len(idle)-limit] {
		if _, err := c.client.Delete(ctx, api.KindOfType[*api.ReplicaSet](), rs.Namespace, rs.Name); err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("deleting old replicaset %s: %w", rs.Key(), err)
		}
		c.log.Info("deleted old replicaset", zap.String("deployment", d.Key()), zap.String("replicaset", rs.Name))
	}
	return nil
}
