package scheduler

import "time"

// assumedPod is a pod this scheduler bound that the View may not show on its node yet.
type assumedPod struct {
	node    string
	req     podRequest
	expires time.Time
}

// assumeCache remembers the pods this scheduler bound until the View shows them, so
// that a burst of decisions does not overfill a node while watches catch up. An entry
// also goes after a TTL, in case the View never shows the pod (it was deleted, or bound
// elsewhere in a way the scheduler did not see). It is not safe for concurrent use; the
// Scheduler guards it with its mutex.
type assumeCache struct {
	ttl    time.Duration
	byKey  map[string]*assumedPod
	byNode map[string]map[string]*assumedPod
}

func newAssumeCache(ttl time.Duration) *assumeCache {
	return &assumeCache{ttl: ttl, byKey: map[string]*assumedPod{}, byNode: map[string]map[string]*assumedPod{}}
}

func (c *assumeCache) len() int { return len(c.byKey) }

func (c *assumeCache) has(key string) bool {
	_, ok := c.byKey[key]
	return ok
}

// add assumes the pod with key bound to node as of now.
func (c *assumeCache) add(key, node string, req podRequest, now time.Time) {
	c.remove(key)
	a := &assumedPod{node: node, req: req, expires: now.Add(c.ttl)}
	c.byKey[key] = a
	if c.byNode[node] == nil {
		c.byNode[node] = map[string]*assumedPod{}
	}
	c.byNode[node][key] = a
}

func (c *assumeCache) remove(key string) {
	a, ok := c.byKey[key]
	if !ok {
		return
	}
	delete(c.byKey, key)
	delete(c.byNode[a.node], key)
	if len(c.byNode[a.node]) == 0 {
		delete(c.byNode, a.node)
	}
}

// onNode returns the pods assumed on node; the caller must not modify the map.
func (c *assumeCache) onNode(node string) map[string]*assumedPod { return c.byNode[node] }

// expire drops the entries whose TTL has passed.
func (c *assumeCache) expire(now time.Time) {
	for key, a := range c.byKey {
		if now.After(a.expires) {
			c.remove(key)
		}
	}
}
