package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

func init() {
	Register("replicaset", func(d Deps) Runner { return NewReplicaSetController(d) })
}

// ReplicaSetController keeps each ReplicaSet's number of pods: it creates and deletes
// pods, adopts orphans its selector matches, releases pods whose labels stop matching,
// and reports status.
type ReplicaSetController struct {
	Client *client.Client
	// Workers is how many keys are reconciled at once. If zero, 4. Set it before Run.
	Workers int
	// Recorder receives the SuccessfulCreate and SuccessfulDelete events. Run runs it.
	Recorder *Recorder
	Logger   *zap.Logger

	clock       Clock
	factory     *client.Factory
	replicaSets client.Typed[*api.ReplicaSet]
	pods        client.Typed[*api.Pod]
	queue       *Queue
	exp         *appsExpectations
}

// NewReplicaSetController returns a controller reading ReplicaSets and pods from
// d's factory.
func NewReplicaSetController(d Deps) *ReplicaSetController {
	d = d.withDefaults()
	c := &ReplicaSetController{Client: d.Client, Recorder: newRecorder(d, "replicaset-controller"), Logger: d.Logger,
		clock: d.Clock, factory: d.Factory, queue: NewQueue(),
		replicaSets: client.For[*api.ReplicaSet](d.Factory), pods: client.For[*api.Pod](d.Factory)}
	c.exp = appsNewExpectations(d.Clock)
	c.replicaSets.AddHandler(client.TypedHandler[*api.ReplicaSet]{
		OnAdd:    func(rs *api.ReplicaSet) { c.queue.Add(rs.Key()) },
		OnUpdate: func(_, rs *api.ReplicaSet) { c.queue.Add(rs.Key()) },
		OnDelete: func(rs *api.ReplicaSet) {
			c.exp.forget(rs.Key())
			c.queue.Add(rs.Key())
		},
	})
	c.pods.AddHandler(client.TypedHandler[*api.Pod]{
		OnAdd: func(p *api.Pod) {
			c.exp.observe(p.Key(), false)
			if p.DeletionTimestamp != nil {
				c.exp.observe(p.Key(), true)
			}
			c.enqueueForPod(p)
		},
		OnUpdate: func(op, p *api.Pod) {
			if p.DeletionTimestamp != nil {
				c.exp.observe(p.Key(), true)
			}
			c.enqueueForPod(p)
			if !appsSameOwner(op.ControllerRef(), p.ControllerRef()) || !appsEqualLabels(op.Labels, p.Labels) {
				c.enqueueForPod(op)
			}
		},
		OnDelete: func(p *api.Pod) {
			c.exp.observe(p.Key(), true)
			c.enqueueForPod(p)
		},
	})
	return c
}

// Run reconciles until ctx is cancelled.
func (c *ReplicaSetController) Run(ctx context.Context) {
	go c.Recorder.Run(ctx)
	if !c.factory.WaitForSync(ctx) {
		return
	}
	runAppsWorkers(ctx, c.queue, c.Workers, c.Logger, c.sync)
}

// runAppsWorkers runs workers that take keys from q and call sync until ctx ends; a
// failed key comes back after its back-off.
func runAppsWorkers(ctx context.Context, q *Queue, workers int, log *zap.Logger, syncFn func(context.Context, string) error) {
	if workers <= 0 {
		workers = 4
	}
	go func() { <-ctx.Done(); q.ShutDown() }()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q.Work(ctx, log, syncFn)
		}()
	}
	wg.Wait()
}

// enqueueForPod queues the ReplicaSet that controls p, or, for an orphan, every
// ReplicaSet of its namespace whose selector matches it (one may adopt it).
func (c *ReplicaSetController) enqueueForPod(p *api.Pod) {
	if ref := p.ControllerRef(); ref != nil {
		if ref.Kind == "ReplicaSet" {
			c.queue.Add(p.Namespace + "/" + ref.Name)
		}
		return
	}
	if p.DeletionTimestamp != nil {
		return
	}
	for _, rs := range c.replicaSets.InNamespace(p.Namespace) {
		if sel, err := rs.Spec.Selector.AsSelector(); err == nil && sel.Matches(p.Labels) {
			c.queue.Add(rs.Key())
		}
	}
}

func appsSameOwner(a, b *api.OwnerReference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.UID == b.UID
}

func appsEqualLabels(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// appsBurstReplicas bounds the pods one sync creates or deletes, so that a huge scale
// request makes steady progress rather than one enormous batch.
const appsBurstReplicas = 500

func (c *ReplicaSetController) sync(ctx context.Context, key string) error {
	rs, ok := c.replicaSets.Get(key)
	if !ok {
		c.exp.forget(key)
		return nil
	}
	if rs.DeletionTimestamp != nil {
		return nil // the garbage collector removes it and its pods
	}
	sel, err := rs.Spec.Selector.AsSelector()
	if err != nil {
		return nil // validation keeps this from happening; nothing to retry
	}
	pods, err := c.claimPods(ctx, rs, sel)
	if err != nil {
		return err
	}
	var manageErr error
	managed := c.exp.satisfied(key)
	if managed {
		manageErr = c.manage(ctx, rs, pods)
	}
	// Pods whose deletion is pending are not counted: the status must not report
	// more than will remain, or a Deployment would scale down too far on it.
	active := pods[:0:0]
	for _, p := range pods {
		if !c.exp.deleting(p.Key()) {
			active = append(active, p)
		}
	}
	failure := rsCondition(rs.Status, api.DeploymentReplicaFailure)
	if managed {
		failure = replicaFailure(rs, len(pods), manageErr, c.clock.Now())
	}
	if err := c.updateStatus(ctx, rs, active, failure); err != nil {
		return err
	}
	return manageErr
}

// claimPods returns the active pods rs owns after adopting orphans its selector
// matches and releasing owned pods it no longer matches.
func (c *ReplicaSetController) claimPods(ctx context.Context, rs *api.ReplicaSet, sel api.Selector) ([]*api.Pod, error) {
	var out []*api.Pod
	var errs []error
	for _, p := range c.pods.InNamespace(rs.Namespace) {
		ref := p.ControllerRef()
		matches := sel.Matches(p.Labels)
		switch {
		case ref != nil && ref.UID == rs.UID:
			if !matches {
				if p.DeletionTimestamp == nil {
					errs = append(errs, c.release(ctx, rs, p))
				}
				continue
			}
		case ref == nil && matches && p.DeletionTimestamp == nil && !p.IsTerminal():
			adopted, err := c.adopt(ctx, rs, p)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p = adopted
		default:
			continue
		}
		if p.DeletionTimestamp == nil && !p.IsTerminal() {
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

// OwnerRef returns a controller owner reference to obj, whose kind must be registered.
func OwnerRef(obj api.Object) api.OwnerReference {
	k, _ := api.KindOf(obj)
	m := obj.GetObjectMeta()
	t := true
	return api.OwnerReference{APIVersion: k.APIVersion(), Kind: k.Kind, Name: m.Name, UID: m.UID, Controller: &t, BlockOwnerDeletion: &t}
}

func (c *ReplicaSetController) adopt(ctx context.Context, rs *api.ReplicaSet, p *api.Pod) (*api.Pod, error) {
	next := api.DeepCopy(p).(*api.Pod)
	next.OwnerReferences = append(next.OwnerReferences, OwnerRef(rs))
	out, err := c.Client.Update(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("adopting pod %s: %w", p.Key(), err)
	}
	c.Logger.Named("replicaset").Info("adopted pod", zap.String("replicaset", rs.Key()), zap.String("pod", p.Name))
	return out.(*api.Pod), nil
}

func (c *ReplicaSetController) release(ctx context.Context, rs *api.ReplicaSet, p *api.Pod) error {
	next := api.DeepCopy(p).(*api.Pod)
	refs := next.OwnerReferences[:0]
	for _, r := range next.OwnerReferences {
		if r.UID != rs.UID {
			refs = append(refs, r)
		}
	}
	next.OwnerReferences = refs
	if _, err := c.Client.Update(ctx, next); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("releasing pod %s: %w", p.Key(), err)
	}
	c.Logger.Named("replicaset").Info("released pod", zap.String("replicaset", rs.Key()), zap.String("pod", p.Name))
	return nil
}

// manage creates or deletes pods until rs has spec.replicas active ones.
func (c *ReplicaSetController) manage(ctx context.Context, rs *api.ReplicaSet, pods []*api.Pod) error {
	want := int(api.Int32Value(rs.Spec.Replicas, 1))
	diff := len(pods) - want
	key := rs.Key()
	switch {
	case diff < 0:
		n := min(-diff, appsBurstReplicas)
		newPods := make([]*api.Pod, n)
		names := make([]string, n)
		for i := range newPods {
			newPods[i] = appsPodFromTemplate(rs)
			names[i] = newPods[i].Key()
		}
		c.exp.expect(key, names, false)
		return appsParallel(newPods, func(p *api.Pod) error {
			_, err := c.Client.Create(ctx, p)
			if err != nil {
				c.exp.observe(p.Key(), false)
				c.Recorder.Event(rs, api.EventWarning, "FailedCreate", "Error creating: %v", err)
				return fmt.Errorf("creating pod for %s: %w", key, err)
			}
			c.Recorder.Event(rs, api.EventNormal, "SuccessfulCreate", "Created pod: %s", p.Name)
			return nil
		})
	case diff > 0:
		victims := append([]*api.Pod(nil), pods...)
		now := c.clock.Now()
		sort.SliceStable(victims, func(i, j int) bool { return appsDeleteFirst(victims[i], victims[j], now) })
		victims = victims[:min(diff, appsBurstReplicas)]
		names := make([]string, len(victims))
		for i, p := range victims {
			names[i] = p.Key()
		}
		c.exp.expect(key, names, true)
		return appsParallel(victims, func(p *api.Pod) error {
			_, err := c.Client.Delete(ctx, api.KindOfType[*api.Pod](), p.Namespace, p.Name)
			if client.IsNotFound(err) {
				err = nil
			}
			if err != nil {
				c.exp.observe(p.Key(), true)
				c.Recorder.Event(rs, api.EventWarning, "FailedDelete", "Error deleting: %v", err)
				return fmt.Errorf("deleting pod %s: %w", p.Key(), err)
			}
			c.Recorder.Event(rs, api.EventNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
			return nil
		})
	}
	return nil
}

// appsParallel runs f on each item, at most 16 at once, and joins the errors.
func appsParallel(items []*api.Pod, f func(*api.Pod) error) error {
	sem := make(chan struct{}, 16)
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = f(it)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// appsDeleteFirst orders pods for scale-down: unscheduled before scheduled, pending
// before running, not ready before ready, ready for less time before longer, newer
// before older.
func appsDeleteFirst(a, b *api.Pod, now time.Time) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	ra, rb := a.Status.Phase == api.PodRunning, b.Status.Phase == api.PodRunning
	if ra != rb {
		return !ra
	}
	ka, kb := appsPodReady(a), appsPodReady(b)
	if ka != kb {
		return !ka
	}
	if ka {
		ta, tb := appsReadySince(a), appsReadySince(b)
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
	}
	ca, cb := appsCreationTime(a), appsCreationTime(b)
	if !ca.Equal(cb) {
		return ca.After(cb)
	}
	return a.Name > b.Name
}

func appsCreationTime(p *api.Pod) time.Time {
	if p.CreationTimestamp == nil {
		return time.Time{}
	}
	return p.CreationTimestamp.Time
}

func appsPodReady(p *api.Pod) bool {
	c := p.Status.Condition(api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

func appsReadySince(p *api.Pod) time.Time {
	c := p.Status.Condition(api.PodReady)
	if c == nil || c.LastTransitionTime == nil {
		return time.Time{}
	}
	return c.LastTransitionTime.Time
}

// appsPodAvailable reports whether p has been Ready for minReady at now, and if it is
// Ready but not yet available, how long until it is.
func appsPodAvailable(p *api.Pod, minReady time.Duration, now time.Time) (bool, time.Duration) {
	if !appsPodReady(p) {
		return false, 0
	}
	if minReady <= 0 {
		return true, 0
	}
	at := appsReadySince(p).Add(minReady)
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

const appsSuffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// appsRandomSuffix returns n characters of the alphabet Kubernetes uses for generated
// names (no vowels, so no words).
func appsRandomSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = appsSuffixAlphabet[int(b[i])%len(appsSuffixAlphabet)]
	}
	return string(b)
}

func appsPodFromTemplate(rs *api.ReplicaSet) *api.Pod {
	t := api.DeepCopy(&api.Pod{ObjectMeta: rs.Spec.Template.Metadata, Spec: rs.Spec.Template.Spec}).(*api.Pod)
	t.TypeMeta = api.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	m := &t.ObjectMeta
	m.Name = rs.Name + "-" + appsRandomSuffix(5)
	m.GenerateName = ""
	m.Namespace = rs.Namespace
	m.UID, m.ResourceVersion, m.CreationTimestamp, m.DeletionTimestamp = "", "", nil, nil
	m.OwnerReferences = []api.OwnerReference{OwnerRef(rs)}
	return t
}

// replicaFailure is the ReplicaFailure condition rs should carry after a pass of
// manage over n pods that returned err: nil once pods are created and deleted again,
// FailedCreate or FailedDelete with the error otherwise (kept from rs if already
// set, so a repeated failure writes nothing), as Kubernetes reports it.
func replicaFailure(rs *api.ReplicaSet, n int, err error, now time.Time) *api.ReplicaSetCondition {
	if err == nil {
		return nil
	}
	if cur := rsCondition(rs.Status, api.DeploymentReplicaFailure); cur != nil {
		return cur
	}
	reason := "FailedCreate"
	if n > int(api.Int32Value(rs.Spec.Replicas, 1)) {
		reason = "FailedDelete"
	}
	return &api.ReplicaSetCondition{Type: api.DeploymentReplicaFailure, Status: api.ConditionTrue, Reason: reason,
		Message: err.Error(), LastTransitionTime: api.NewTime(now)}
}

// rsCondition returns the condition of type typ in st, nil if there is none.
func rsCondition(st api.ReplicaSetStatus, typ string) *api.ReplicaSetCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == typ {
			return &st.Conditions[i]
		}
	}
	return nil
}

// updateStatus writes rs's counts from pods, with failure as its only ReplicaFailure
// condition (none when nil).
func (c *ReplicaSetController) updateStatus(ctx context.Context, rs *api.ReplicaSet, pods []*api.Pod, failure *api.ReplicaSetCondition) error {
	now := c.clock.Now()
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	var tmplSel api.Selector = api.SelectorFromMap(rs.Spec.Template.Metadata.Labels)
	st := api.ReplicaSetStatus{Replicas: int32(len(pods)), ObservedGeneration: rs.Generation}
	for _, cond := range rs.Status.Conditions {
		if cond.Type != api.DeploymentReplicaFailure {
			st.Conditions = append(st.Conditions, cond)
		}
	}
	if failure != nil {
		st.Conditions = append(st.Conditions, *failure)
	}
	var recheck time.Duration
	for _, p := range pods {
		if tmplSel.Matches(p.Labels) {
			st.FullyLabeledReplicas++
		}
		if appsPodReady(p) {
			st.ReadyReplicas++
		}
		if ok, wait := appsPodAvailable(p, minReady, now); ok {
			st.AvailableReplicas++
		} else if wait > 0 && (recheck == 0 || wait < recheck) {
			recheck = wait
		}
	}
	if recheck > 0 {
		// A pod becomes available by the passing of time, which no watch reports.
		c.queue.AddAfter(rs.Key(), recheck+10*time.Millisecond)
	}
	if equalRSStatus(st, rs.Status) {
		return nil
	}
	next := api.DeepCopy(rs).(*api.ReplicaSet)
	next.Status = st
	_, err := c.Client.UpdateStatus(ctx, next)
	if client.IsNotFound(err) {
		return nil
	}
	return err
}

func equalRSStatus(a, b api.ReplicaSetStatus) bool {
	return a.Replicas == b.Replicas && a.FullyLabeledReplicas == b.FullyLabeledReplicas && a.ReadyReplicas == b.ReadyReplicas &&
		a.AvailableReplicas == b.AvailableReplicas && a.ObservedGeneration == b.ObservedGeneration &&
		reflect.DeepEqual(a.Conditions, b.Conditions)
}

// appsExpectations remember the pod creations and deletions a controller asked for and
// has not yet seen through its informer, so that a sync reading a lagging cache does
// not act twice. Entries expire after appsExpectationTTL in case an event is lost. It is
// safe for concurrent use.
type appsExpectations struct {
	mu    sync.Mutex
	adds  map[string]string // pod key -> owner key
	dels  map[string]string
	since map[string]time.Time // owner key -> when the oldest entry was made
	clock Clock
}

const appsExpectationTTL = 5 * time.Minute

func appsNewExpectations(clock Clock) *appsExpectations {
	return &appsExpectations{adds: map[string]string{}, dels: map[string]string{}, since: map[string]time.Time{}, clock: clock}
}

func (e *appsExpectations) expect(owner string, pods []string, del bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.adds
	if del {
		m = e.dels
	}
	for _, p := range pods {
		m[p] = owner
	}
	if _, ok := e.since[owner]; !ok {
		e.since[owner] = e.clock.Now()
	}
}

func (e *appsExpectations) observe(pod string, del bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if del {
		delete(e.dels, pod)
	} else {
		delete(e.adds, pod)
	}
}

func (e *appsExpectations) deleting(pod string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.dels[pod]
	return ok
}

func (e *appsExpectations) satisfied(owner string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	pending := false
	for _, m := range []map[string]string{e.adds, e.dels} {
		for _, o := range m {
			if o == owner {
				pending = true
				break
			}
		}
	}
	if !pending {
		delete(e.since, owner)
		return true
	}
	if e.clock.Now().Sub(e.since[owner]) > appsExpectationTTL {
		e.forgetLocked(owner)
		return true
	}
	return false
}

func (e *appsExpectations) forget(owner string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.forgetLocked(owner)
}

func (e *appsExpectations) forgetLocked(owner string) {
	for _, m := range []map[string]string{e.adds, e.dels} {
		for p, o := range m {
			if o == owner {
				delete(m, p)
			}
		}
	}
	delete(e.since, owner)
}
