package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"

	"github.com/cloudbox/cloudbox/cloud/api"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// rolloutKinds are the workloads whose templates have a history: a Deployment's is
// its ReplicaSets, a DaemonSet's and a StatefulSet's their ControllerRevisions.
var rolloutKinds = []string{"deployments", "daemonsets", "statefulsets"}

// templateRevision is one revision of a workload's pod template.
type templateRevision struct {
	number int64
	cause  string // kubernetes.io/change-cause, "" if none
	// template is what undo writes back: for a Deployment, its ReplicaSet's template
	// without the pod-template-hash label the Deployment controller added.
	template *api.PodTemplateSpec
	// current says the revision holds the workload's template. (A Deployment's
	// revision annotation can lag behind its template.)
	current bool
}

// templateHistory returns the revisions of workload o (a Deployment, DaemonSet or
// StatefulSet, as read from the API), lowest number first.
func templateHistory(ctx context.Context, cl *client.Client, o api.Object) ([]templateRevision, error) {
	var out []templateRevision
	switch w := o.(type) {
	case *api.Deployment:
		rss, err := ownedReplicaSets(ctx, cl, w)
		if err != nil {
			return nil, err
		}
		for _, rs := range rss {
			t := api.DeepCopyOf(&api.ReplicaSet{Spec: api.ReplicaSetSpec{Template: rs.Spec.Template}}).Spec.Template
			delete(t.Metadata.Labels, api.LabelPodTemplateHash)
			out = append(out, templateRevision{number: revisionOf(rs), cause: rs.Annotations[api.AnnotationChangeCause], template: &t,
				current: sameTemplateJSON(&t, &w.Spec.Template)})
		}
	case *api.DaemonSet, *api.StatefulSet:
		m := o.GetObjectMeta()
		revisions, err := client.ListTyped[*api.ControllerRevision](ctx, cl, m.Namespace, client.ListOptions{})
		if err != nil {
			return nil, err
		}
		for _, r := range revisions {
			if !r.IsControlledBy(m.UID) || r.Data == nil {
				continue
			}
			out = append(out, templateRevision{number: r.Revision, cause: r.Annotations[api.AnnotationChangeCause], template: r.Data,
				current: sameTemplateJSON(r.Data, templateOf(o))})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].number < out[j].number })
	default:
		return nil, fmt.Errorf("%T has no rollout history", o)
	}
	return out, nil
}

// sameTemplateJSON compares templates as the controllers do: as stored, in JSON.
func sameTemplateJSON(a, b *api.PodTemplateSpec) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// revisionNumbers lists the numbers for an error message: "2, 3, 4".
func revisionNumbers(revs []templateRevision) string {
	if len(revs) == 0 {
		return "none"
	}
	parts := make([]string, len(revs))
	for i, r := range revs {
		parts[i] = fmt.Sprint(r.number)
	}
	return strings.Join(parts, ", ")
}

// findRevision returns revision n of revs, or an error that names the ones there are.
func findRevision(revs []templateRevision, singular, name string, n int64) (*templateRevision, error) {
	for i := range revs {
		if revs[i].number == n {
			return &revs[i], nil
		}
	}
	return nil, fmt.Errorf("%s %q has no revision %d (its revisions: %s)", singular, name, n, revisionNumbers(revs))
}

// undoTarget picks the revision undo goes back to: revision want, or with want 0
// the newest one that is not current.
func undoTarget(revs []templateRevision, singular, name string, want int64) (*templateRevision, error) {
	if want != 0 {
		return findRevision(revs, singular, name, want)
	}
	for i := len(revs) - 1; i >= 0; i-- {
		if !revs[i].current {
			return &revs[i], nil
		}
	}
	return nil, fmt.Errorf("%s %q has no previous revision to go back to (its revisions: %s)", singular, name, revisionNumbers(revs))
}

// rolloutTarget is the one KIND/NAME a rollout command names, and a client.
func rolloutTarget(c *cli.Context) (*api.KindInfo, string, *client.Client, error) {
	k, name, err := oneTarget(c, rolloutKinds...)
	if err != nil {
		return nil, "", nil, err
	}
	cl, err := newClient(c)
	return k, name, cl, err
}

func getWorkload(c *cli.Context, cl *client.Client, k *api.KindInfo, name string) (api.Object, error) {
	return cl.Get(c.Context, k, c.String("namespace"), name)
}

func rolloutHistory(c *cli.Context) error {
	k, name, cl, err := rolloutTarget(c)
	if err != nil {
		return err
	}
	o, err := getWorkload(c, cl, k, name)
	if err != nil {
		return err
	}
	revs, err := templateHistory(c.Context, cl, o)
	if err != nil {
		return err
	}
	if n := c.Int64("revision"); n != 0 {
		r, err := findRevision(revs, k.Singular, name, n)
		if err != nil {
			return err
		}
		return printRevision(c.App.Writer, k.Singular+"/"+name, r)
	}
	fmt.Fprintf(c.App.Writer, "%s/%s\nREVISION  CHANGE-CAUSE\n", k.Singular, name)
	for _, r := range revs {
		fmt.Fprintf(c.App.Writer, "%-9d %s\n", r.number, orNone(r.cause))
	}
	return nil
}

// printRevision shows one revision's template, as `rollout history --revision N`
// does in kubectl, with the template written as YAML.
func printRevision(w io.Writer, what string, r *templateRevision) error {
	b, err := yaml.Marshal(r.template)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s with revision #%d\n", what, r.number)
	if r.cause != "" {
		fmt.Fprintf(w, "Change-Cause: %s\n", r.cause)
	}
	fmt.Fprintf(w, "Pod Template:\n%s", indent(string(b), "  "))
	return nil
}

// errSkipUndo stops an undo whose revision is already the workload's template.
type errSkipUndo struct{ number int64 }

func (e errSkipUndo) Error() string {
	return fmt.Sprintf("current template already matches revision %d", e.number)
}

func rolloutUndo(c *cli.Context) error {
	k, name, cl, err := rolloutTarget(c)
	if err != nil {
		return err
	}
	var target *templateRevision
	_, err = cl.Modify(c.Context, k, c.String("namespace"), name, func(o api.Object) error {
		revs, err := templateHistory(c.Context, cl, o)
		if err != nil {
			return err
		}
		if target, err = undoTarget(revs, k.Singular, name, c.Int64("to-revision")); err != nil {
			return err
		}
		cur := templateOf(o)
		if sameTemplateJSON(cur, target.template) {
			return errSkipUndo{target.number}
		}
		*cur = *target.template
		return nil
	})
	if skip, ok := err.(errSkipUndo); ok {
		fmt.Fprintf(c.App.Writer, "%s/%s skipped rollback (%v)\n", k.Singular, name, skip)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "%s/%s rolled back to revision %d\n", k.Singular, name, target.number)
	return nil
}
