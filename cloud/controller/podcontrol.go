package controller

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// The pod helpers of the controllers that make pods from a template: making,
// creating and deleting them, their readiness and availability, and the order in
// which a scale-down picks them.

// parallel runs f on each item, at most 16 at once, and joins the errors.
func parallel(items []*api.Pod, f func(*api.Pod) error) error {
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

// deleteFirst orders pods for scale-down: unscheduled before scheduled, pending
// before running, not ready before ready, ready for less time before longer, newer
// before older.
func deleteFirst(a, b *api.Pod, now time.Time) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	ra, rb := a.Status.Phase == api.PodRunning, b.Status.Phase == api.PodRunning
	if ra != rb {
		return !ra
	}
	ka, kb := podReady(a), podReady(b)
	if ka != kb {
		return !ka
	}
	if ka {
		ta, tb := readySince(a), readySince(b)
		if !ta.Equal(tb) {
			return ta.After(tb)
		}
	}
	ca, cb := creationTime(a), creationTime(b)
	if !ca.Equal(cb) {
		return ca.After(cb)
	}
	return a.Name > b.Name
}

func creationTime(p *api.Pod) time.Time {
	if p.CreationTimestamp == nil {
		return time.Time{}
	}
	return p.CreationTimestamp.Time
}

func podReady(p *api.Pod) bool {
	c := p.Status.Condition(api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

func readySince(p *api.Pod) time.Time {
	c := p.Status.Condition(api.PodReady)
	if c == nil || c.LastTransitionTime == nil {
		return time.Time{}
	}
	return c.LastTransitionTime.Time
}

// podAvailable reports whether p has been Ready for minReady at now, and if it is
// Ready but not yet available, how long until it is.
func podAvailable(p *api.Pod, minReady time.Duration, now time.Time) (bool, time.Duration) {
	if !podReady(p) {
		return false, 0
	}
	if minReady <= 0 {
		return true, 0
	}
	at := readySince(p).Add(minReady)
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

// randomSuffix returns n characters of the alphabet Kubernetes uses for generated
// names (no vowels, so no words).
func randomSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b)
}

// podFromTemplate makes a pod from owner's template t, named after owner with a
// random suffix, in owner's namespace and controlled by it.
func podFromTemplate(owner api.Object, t *api.PodTemplateSpec) *api.Pod {
	p := api.DeepCopyOf(&api.Pod{ObjectMeta: t.Metadata, Spec: t.Spec})
	p.TypeMeta = api.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	om, m := owner.GetObjectMeta(), &p.ObjectMeta
	m.Name = om.Name + "-" + randomSuffix(5)
	m.GenerateName = ""
	m.Namespace = om.Namespace
	m.UID, m.ResourceVersion, m.CreationTimestamp, m.DeletionTimestamp = "", "", nil, nil
	m.OwnerReferences = []api.OwnerReference{OwnerRef(owner)}
	return p
}

// podServing reports whether p is Ready and not being deleted.
func podServing(p *api.Pod) bool { return podReady(p) && p.DeletionTimestamp == nil }

// podControl creates and deletes an owner's pods for the controllers that keep
// expectations (ReplicaSet, DaemonSet): it records what it asks for before the
// request, forgets it again when the request fails, and tells of both in events.
type podControl struct {
	client   *client.Client
	recorder *Recorder
	exp      *expectations
	log      *zap.Logger
}

// expect records that owner's pods are to be created (or deleted, with del) and
// returns owner's key.
func (pc podControl) expect(owner api.Object, pods []*api.Pod, del bool) string {
	key := owner.GetObjectMeta().Key()
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Key()
	}
	pc.exp.expect(key, names, del)
	return key
}

// create creates pods for owner, at most 16 at once; why, if not "", is logged for
// each pod made.
func (pc podControl) create(ctx context.Context, owner api.Object, pods []*api.Pod, why string) error {
	if len(pods) == 0 {
		return nil
	}
	key := pc.expect(owner, pods, false)
	return parallel(pods, func(p *api.Pod) error {
		if _, err := pc.client.Create(ctx, p); err != nil {
			pc.exp.observe(p.Key(), false)
			pc.recorder.Event(owner, api.EventWarning, "FailedCreate", "Error creating: %v", err)
			return fmt.Errorf("creating pod for %s: %w", key, err)
		}
		if why != "" {
			pc.log.Info("created pod", zap.String("owner", key), zap.String("pod", p.Name), zap.String("node", p.Spec.NodeName), zap.String("reason", why))
		}
		pc.recorder.Event(owner, api.EventNormal, "SuccessfulCreate", "Created pod: %s", p.Name)
		return nil
	})
}

// delete deletes owner's pods, at most 16 at once; one already gone is no error.
// why, if not "", is logged for each pod deleted.
func (pc podControl) delete(ctx context.Context, owner api.Object, pods []*api.Pod, why string) error {
	if len(pods) == 0 {
		return nil
	}
	key := pc.expect(owner, pods, true)
	return parallel(pods, func(p *api.Pod) error {
		_, err := pc.client.Delete(ctx, api.KindOfType[*api.Pod](), p.Namespace, p.Name)
		if client.IsNotFound(err) {
			err = nil
		}
		if err != nil {
			pc.exp.observe(p.Key(), true)
			pc.recorder.Event(owner, api.EventWarning, "FailedDelete", "Error deleting: %v", err)
			return fmt.Errorf("deleting pod %s: %w", p.Key(), err)
		}
		if why != "" {
			pc.log.Info("deleted pod", zap.String("owner", key), zap.String("pod", p.Name), zap.String("node", p.Spec.NodeName), zap.String("reason", why))
		}
		pc.recorder.Event(owner, api.EventNormal, "SuccessfulDelete", "Deleted pod: %s", p.Name)
		return nil
	})
}
