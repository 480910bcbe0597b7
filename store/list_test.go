package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func names(items []api.Object) []string {
	out := make([]string, len(items))
	for i, o := range items {
		out[i] = o.GetObjectMeta().Key()
	}
	return out
}

func TestList(t *testing.T) {
	s, _ := openTest(t, Options{})
	for _, ns := range []string{"a", "b", "c"} {
		for i := range 3 {
			p := newPod(ns, fmt.Sprintf("p%d", i))
			p.Labels = map[string]string{"even": fmt.Sprint(i%2 == 0)}
			mustCreate(t, s, pods, p)
		}
	}
	// A namespace whose name extends another's must not leak into its prefix scan.
	mustCreate(t, s, pods, newPod("ab", "p0"))
	even := func(o api.Object) bool { return o.GetObjectMeta().Labels["even"] == "true" }

	tests := []struct {
		name string
		opts ListOptions
		want []string
	}{
		{"all", ListOptions{}, []string{"a/p0", "a/p1", "a/p2", "ab/p0", "b/p0", "b/p1", "b/p2", "c/p0", "c/p1", "c/p2"}},
		{"namespace", ListOptions{Namespace: "a"}, []string{"a/p0", "a/p1", "a/p2"}},
		{"namespace with none", ListOptions{Namespace: "zzz"}, []string{}},
		{"predicate", ListOptions{Namespace: "b", Predicate: even}, []string{"b/p0", "b/p2"}},
		{"predicate before limit", ListOptions{Predicate: even, Limit: 3}, []string{"a/p0", "a/p2", "b/p0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := s.List(context.Background(), pods, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(res.Items); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if res.Revision != 10 {
				t.Fatalf("revision = %d, want 10", res.Revision)
			}
			if len(res.Items) > 0 && res.Items[0].GetTypeMeta().Kind != "Pod" {
				t.Fatalf("TypeMeta not filled: %+v", res.Items[0].GetTypeMeta())
			}
		})
	}
}

func TestListEmptyKind(t *testing.T) {
	s, _ := openTest(t, Options{})
	res, err := s.List(context.Background(), namespaces, ListOptions{})
	if err != nil || len(res.Items) != 0 || res.Continue != "" {
		t.Fatalf("List = %+v, %v", res, err)
	}
}

func TestListPagination(t *testing.T) {
	s, _ := openTest(t, Options{})
	var want []string
	for i := range 25 {
		p := newPod("default", fmt.Sprintf("p%02d", i))
		mustCreate(t, s, pods, p)
		want = append(want, p.Key())
	}
	mustCreate(t, s, pods, newPod("other", "p00"))

	var got []string
	var pages []int
	opts := ListOptions{Namespace: "default", Limit: 10}
	for {
		res, err := s.List(context.Background(), pods, opts)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, names(res.Items)...)
		pages = append(pages, len(res.Items))
		if res.Continue == "" {
			break
		}
		opts.Continue = res.Continue
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if !slices.Equal(pages, []int{10, 10, 5}) {
		t.Fatalf("page sizes %v, want [10 10 5]", pages)
	}
}

func TestListBadInput(t *testing.T) {
	s, _ := openTest(t, Options{})
	mustCreate(t, s, pods, newPod("a", "p0"))
	mustCreate(t, s, pods, newPod("a", "p1"))
	res, err := s.List(context.Background(), pods, ListOptions{Namespace: "a", Limit: 1})
	if err != nil || res.Continue == "" {
		t.Fatalf("List = %+v, %v", res, err)
	}
	tests := []struct {
		name string
		opts ListOptions
	}{
		{"garbage token", ListOptions{Continue: "!!not base64!!"}},
		{"base64 of garbage", ListOptions{Continue: "aGVsbG8"}},
		{"token of another namespace", ListOptions{Namespace: "b", Continue: res.Continue}},
		{"negative limit", ListOptions{Limit: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.List(context.Background(), pods, tt.opts); !errors.Is(err, api.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := s.List(context.Background(), namespaces, ListOptions{Namespace: "a"}); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("namespace on a cluster-scoped kind: %v", err)
	}
}
