package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("daemonset", func(d Deps) Runner { return NewDaemonSetController(d) })
}

// dsUnschedulableTaint is the taint Kubernetes gives a cordoned node; a DaemonSet whose
// template tolerates it runs on cordoned nodes too.
const dsUnschedulableTaint = "node.kubernetes.io/unschedulable"

// DaemonSetController runs DaemonSets: one pod on every node, Ready or not, that its
// template's nodeSelector matches, that is schedulable (or whose cordon the template
// tolerates) and whose NoSchedule and NoExecute taints the template tolerates. Pods
// are made with spec.nodeName set, so the scheduler never sees them, and a controller
// owner reference. A node that joins or starts matching gets a pod; a pod whose node
// stops matching is deleted, and one whose node is gone is deleted at once (grace 0),
// since no agent is left to finish a graceful delete. A failed pod is deleted and,
// once it is gone, made again. A template change is rolled out (RollingUpdate) by
// deleting old pods, labelled with another controller-revision-hash, while at most
// maxUnavailable nodes lack an available pod; a node gets its new pod only after its
// old one is gone, so two daemons never share a node's host ports. Each template the
// set has had is kept as a ControllerRevision (history.go), pruned to
// revisionHistoryLimit; the pods carry its hash.
//
// Pods are never adopted: a DaemonSet only manages the pods it made.
type DaemonSetController struct {
	base
	sets       client.Typed[*api.DaemonSet]
	pods       client.Typed[*api.Pod]
	nodes      client.Typed[*api.Node]
	exp        *expectations
	podControl podControl
	history    *revisionHistory
}

// NewDaemonSetController returns a controller reading DaemonSets, their pods and
// revisions, and the nodes from d's factory.
func NewDaemonSetController(d Deps) *DaemonSetController {
	c := &DaemonSetController{base: newBase(d, "daemonset-controller", 1),
		sets: client.For[*api.DaemonSet](d.Factory), pods: client.For[*api.Pod](d.Factory), nodes: client.For[*api.Node](d.Factory)}
	c.exp = newExpectations(c.clock)
	c.podControl = podControl{client: c.client, recorder: c.recorder, exp: c.exp, log: c.log}
	c.history = newRevisionHistory(&c.base, "DaemonSet")
	c.sets.AddHandler(client.TypedHandler[*api.DaemonSet]{
		OnAdd:    func(ds *api.DaemonSet) { c.enqueue(ds) },
		OnUpdate: func(_, ds *api.DaemonSet) { c.enqueue(ds) },
		OnDelete: func(ds *api.DaemonSet) { c.exp.forget(ds.Key()) },
	})
	onPod := func(p *api.Pod, deleted bool) {
		c.exp.observe(p.Key(), false)
		if deleted || p.DeletionTimestamp != nil {
			c.exp.observe(p.Key(), true)
		}
		c.enqueueController("DaemonSet", p)
	}
	c.pods.AddHandler(client.TypedHandler[*api.Pod]{
		OnAdd:    func(p *api.Pod) { onPod(p, false) },
		OnUpdate: func(_, p *api.Pod) { onPod(p, false) },
		OnDelete: func(p *api.Pod) { onPod(p, true) },
	})
	// Heartbeats update a node's status every few seconds; only what decides where
	// daemons run (labels, spec, deletion) is worth a sync of every set.
	c.nodes.AddHandler(client.TypedHandler[*api.Node]{
		OnAdd: func(*api.Node) { enqueueAll(&c.base, c.sets) },
		OnUpdate: func(on, nn *api.Node) {
			if !reflect.DeepEqual(on.Labels, nn.Labels) || !reflect.DeepEqual(on.Spec, nn.Spec) || (on.DeletionTimestamp == nil) != (nn.DeletionTimestamp == nil) {
				enqueueAll(&c.base, c.sets)
			}
		},
		OnDelete: func(*api.Node) { enqueueAll(&c.base, c.sets) },
	})
	return c
}

// Run works until ctx is cancelled.
func (c *DaemonSetController) Run(ctx context.Context) { c.runQueue(ctx, c.sync) }

// dsNodeFit says whether a set's pod belongs on a node: run means a pod should be
// made there, keep that a running one may stay (a cordon or a NoSchedule taint
// added later does not evict, as in Kubernetes).
func dsNodeFit(t *api.PodTemplateSpec, n *api.Node) (run, keep bool) {
	if n.DeletionTimestamp != nil {
		return false, false
	}
	if t.Spec.NodeName != "" && t.Spec.NodeName != n.Name {
		return false, false
	}
	for k, v := range t.Spec.NodeSelector {
		if got, ok := n.Labels[k]; !ok || got != v {
			return false, false
		}
	}
	run, keep = true, true
	if n.Spec.Unschedulable && !dsTolerated(t.Spec.Tolerations, api.Taint{Key: dsUnschedulableTaint, Effect: api.TaintNoSchedule}) {
		run = false
	}
	for _, taint := range n.Spec.Taints {
		if taint.Effect != api.TaintNoSchedule && taint.Effect != api.TaintNoExecute {
			continue
		}
		if !dsTolerated(t.Spec.Tolerations, taint) {
			run = false
			if taint.Effect == api.TaintNoExecute {
				keep = false
			}
		}
	}
	return run, keep
}

// dsTolerated matches tolerations against a taint as Kubernetes (and the scheduler)
// does: an empty effect matches every effect; Exists matches any value of the key,
// and with an empty key every taint; Equal (or none) needs key and value equal.
func dsTolerated(tols []api.Toleration, t api.Taint) bool {
	for _, tol := range tols {
		if tol.Effect != "" && tol.Effect != t.Effect {
			continue
		}
		switch tol.Operator {
		case api.TolerationOpExists:
			if tol.Key == "" || tol.Key == t.Key {
				return true
			}
		case "", api.TolerationOpEqual:
			if tol.Key != "" && tol.Key == t.Key && tol.Value == t.Value {
				return true
			}
		}
	}
	return false
}

// dsNodeState is one node's part in a sync: whether the set belongs there and the
// set's pods on it, oldest first.
type dsNodeState struct {
	node      *api.Node // nil: the pods name a node that does not exist
	run, keep bool
	pods      []*api.Pod
}

// active is the node's pod that counts: the oldest one neither being deleted nor
// finished; nil when there is none.
func (s *dsNodeState) active() *api.Pod {
	for _, p := range s.pods {
		if p.DeletionTimestamp == nil && !p.IsTerminal() {
			return p
		}
	}
	return nil
}

func (c *DaemonSetController) sync(ctx context.Context, key string) error {
	ds, ok := c.sets.Get(key)
	if !ok {
		c.exp.forget(key)
		return nil // deleted: the garbage collector removes its pods
	}
	if ds.DeletionTimestamp != nil {
		return nil
	}
	// The template's revision: pods carry its hash.
	revs := c.history.owned(ds)
	cur, err := c.history.current(ctx, ds, &ds.Spec.Template, ds.Status.CollisionCount, revs)
	if errors.Is(err, errRevisionNameTaken) {
		return countCollision(ctx, c.client, ds, func(o *api.DaemonSet) **int32 { return &o.Status.CollisionCount }, err)
	}
	if err != nil {
		return err
	}
	hash := revisionHashOf(ds.Name, cur)
	live := map[string]bool{hash: true}
	states := map[string]*dsNodeState{}
	for _, n := range c.nodes.List() {
		run, keep := dsNodeFit(&ds.Spec.Template, n)
		states[n.Name] = &dsNodeState{node: n, run: run, keep: keep}
	}
	for _, p := range c.pods.ControlledBy(ds.UID) {
		s := states[p.Spec.NodeName]
		if s == nil {
			s = &dsNodeState{}
			states[p.Spec.NodeName] = s
		}
		s.pods = append(s.pods, p)
		live[p.Labels[api.LabelControllerRevisionHash]] = true
	}
	for _, s := range states {
		sort.SliceStable(s.pods, func(i, j int) bool {
			a, b := creationTime(s.pods[i]), creationTime(s.pods[j])
			if !a.Equal(b) {
				return a.Before(b)
			}
			return s.pods[i].Name < s.pods[j].Name
		})
	}
	// A lagging cache must not make a second pod for a node, nor count a pod it
	// already deleted as available: act only once earlier writes are seen.
	if c.exp.satisfied(key) {
		err = c.manage(ctx, ds, hash, states)
		if err == nil && ds.Spec.UpdateStrategy.Type != api.OnDeleteDaemonSetStrategyType && c.exp.satisfied(key) {
			err = c.rollingUpdate(ctx, ds, hash, states)
		}
	}
	if serr := c.updateStatus(ctx, ds, hash, states); err == nil {
		err = serr
	}
	limit := int(api.Int32Value(ds.Spec.RevisionHistoryLimit, api.DefaultRevisionHistoryLimit))
	if perr := c.history.prune(ctx, &ds.ObjectMeta, revs, limit, func(r *api.ControllerRevision) bool { return live[revisionHashOf(ds.Name, r)] }); err == nil {
		err = perr
	}
	return err
}

// manage makes the missing pods and deletes those that do not belong.
func (c *DaemonSetController) manage(ctx context.Context, ds *api.DaemonSet, hash string, states map[string]*dsNodeState) error {
	var create []string
	var del []*api.Pod
	var force []*api.Pod // on a node that no longer exists
	names := make([]string, 0, len(states))
	for name := range states {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := states[name]
		switch {
		case s.node == nil:
			force = append(force, s.pods...)
		case !s.keep || (!s.run && s.active() == nil):
			for _, p := range s.pods {
				if p.DeletionTimestamp == nil {
					del = append(del, p)
				}
			}
		case len(s.pods) == 0:
			if s.run {
				create = append(create, name)
			}
		default:
			// Failed (or, against restartPolicy Always, succeeded) pods go, and all but
			// the oldest running one; the next sync makes a pod once none is left.
			var running bool
			for _, p := range s.pods {
				switch {
				case p.DeletionTimestamp != nil:
				case p.IsTerminal() || running:
					del = append(del, p)
				default:
					running = true
				}
			}
		}
	}
	key := ds.Key()
	var errs []error
	for _, p := range force {
		zero := int64(0)
		c.exp.expect(key, []string{p.Key()}, true)
		if _, err := c.client.DeleteWithGrace(ctx, api.KindOfType[*api.Pod](), p.Namespace, p.Name, &zero); err != nil && !client.IsNotFound(err) {
			c.exp.observe(p.Key(), true)
			errs = append(errs, fmt.Errorf("deleting pod %s of a gone node: %w", p.Key(), err))
			continue
		}
		c.log.Info("deleted pod of a gone node", zap.String("daemonset", key), zap.String("pod", p.Name), zap.String("node", p.Spec.NodeName))
	}
	errs = append(errs, c.podControl.delete(ctx, ds, del, "pod does not belong on its node"))
	pods := make([]*api.Pod, len(create))
	for i, node := range create {
		pods[i] = daemonPod(ds, hash, node)
	}
	errs = append(errs, c.podControl.create(ctx, ds, pods, "the node lacks its daemon"))
	return errors.Join(errs...)
}

// rollingUpdate deletes pods of an old template, those already unavailable first,
// then available ones while fewer than maxUnavailable nodes lack an available pod.
// manage makes each node's new pod once its old one is gone.
func (c *DaemonSetController) rollingUpdate(ctx context.Context, ds *api.DaemonSet, hash string, states map[string]*dsNodeState) error {
	now := c.clock.Now()
	minReady := time.Duration(ds.Spec.MinReadySeconds) * time.Second
	desired, unavailable := 0, 0
	var oldAvailable, oldUnavailable []*api.Pod
	for _, s := range states {
		if s.node == nil || !(s.run || (s.keep && s.active() != nil)) {
			continue
		}
		desired++
		p := s.active()
		ok := false
		if p != nil {
			ok, _ = podAvailable(p, minReady, now)
		}
		if !ok {
			unavailable++
		}
		if p == nil || p.Labels[api.LabelControllerRevisionHash] == hash {
			continue
		}
		if ok {
			oldAvailable = append(oldAvailable, p)
		} else {
			oldUnavailable = append(oldUnavailable, p)
		}
	}
	maxUnavailable := ds.DaemonSetMaxUnavailable(desired)
	victims := oldUnavailable
	sort.Slice(oldAvailable, func(i, j int) bool { return oldAvailable[i].Spec.NodeName < oldAvailable[j].Spec.NodeName })
	for _, p := range oldAvailable {
		if unavailable >= maxUnavailable {
			break
		}
		victims = append(victims, p)
		unavailable++
	}
	return c.podControl.delete(ctx, ds, victims, "rolling update")
}

// daemonPod is ds's pod for node, of the template with the given hash.
func daemonPod(ds *api.DaemonSet, hash, node string) *api.Pod {
	pod := podFromTemplate(ds, &ds.Spec.Template)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[api.LabelControllerRevisionHash] = hash
	pod.Spec.NodeName = node
	return pod
}

func (c *DaemonSetController) updateStatus(ctx context.Context, ds *api.DaemonSet, hash string, states map[string]*dsNodeState) error {
	now := c.clock.Now()
	minReady := time.Duration(ds.Spec.MinReadySeconds) * time.Second
	st := api.DaemonSetStatus{ObservedGeneration: ds.Generation, CollisionCount: ds.Status.CollisionCount}
	var recheck time.Duration
	for _, s := range states {
		p := s.active()
		belongs := s.node != nil && (s.run || (s.keep && p != nil))
		if belongs {
			st.DesiredNumberScheduled++
		}
		if p == nil {
			continue
		}
		if !belongs {
			st.NumberMisscheduled++
			continue
		}
		st.CurrentNumberScheduled++
		if p.Labels[api.LabelControllerRevisionHash] == hash {
			st.UpdatedNumberScheduled++
		}
		if podReady(p) {
			st.NumberReady++
		}
		if ok, wait := podAvailable(p, minReady, now); ok {
			st.NumberAvailable++
		} else if wait > 0 && (recheck == 0 || wait < recheck) {
			recheck = wait
		}
	}
	st.NumberUnavailable = st.DesiredNumberScheduled - st.NumberAvailable
	if recheck > 0 {
		// A pod becomes available by the passing of time, which no watch reports.
		c.queue.AddAfter(ds.Key(), recheck+10*time.Millisecond)
	}
	if reflect.DeepEqual(st, ds.Status) {
		return nil
	}
	next := api.DeepCopyOf(ds)
	next.Status = st
	_, err := c.client.UpdateStatus(ctx, next)
	if client.IsConflict(err) || client.IsNotFound(err) {
		return nil // a newer version is queued
	}
	return err
}
