package client

import (
	"strings"
	"testing"

	"github.com/cloudbox/cloudbox/cloud/api"
)

func TestDecodeWatchEvent(t *testing.T) {
	pods := api.KindOfType[*api.Pod]()
	tests := []struct {
		name    string
		line    string
		typ     string
		pod     string // the decoded pod's namespace/name
		errHas  string
		errGone bool
	}{
		{name: "added", line: `{"type":"ADDED","object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","resourceVersion":"7"},"status":{"phase":"Pending"}}}`,
			typ: "ADDED", pod: "default/a"},
		{name: "object before type", line: `{"object":{"metadata":{"name":"b","namespace":"x"}},"type":"DELETED"}`,
			typ: "DELETED", pod: "x/b"},
		{name: "bookmark", line: `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"42"}}}`,
			typ: "BOOKMARK", pod: ""},
		// A Status's string "status" does not fit a pod's: the line is read again as a Status.
		{name: "error", line: `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Expired","message":"too old","code":410}}`,
			errHas: "too old", errGone: true},
		{name: "not JSON", line: `{"type":"ADDED","object":{`, errHas: "bad event"},
		{name: "wrong shape", line: `{"type":"ADDED","object":{"metadata":{"name":7}}}`, errHas: "bad event"},
		{name: "null object", line: `{"type":"ADDED","object":null}`, errHas: "without an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := decodeWatchEvent(pods, []byte(tt.line))
			if tt.errHas != "" {
				if ev.Err == nil || !strings.Contains(ev.Err.Error(), tt.errHas) {
					t.Fatalf("error %v, want one containing %q", ev.Err, tt.errHas)
				}
				if IsGone(ev.Err) != tt.errGone {
					t.Errorf("IsGone(%v) = %v, want %v", ev.Err, !tt.errGone, tt.errGone)
				}
				return
			}
			if ev.Err != nil {
				t.Fatal(ev.Err)
			}
			p, ok := ev.Object.(*api.Pod)
			if !ok {
				t.Fatalf("object is a %T, want *api.Pod", ev.Object)
			}
			if ev.Type != tt.typ || p.GetObjectMeta().Key() != tt.pod {
				t.Errorf("got %s %s, want %s %s", ev.Type, p.GetObjectMeta().Key(), tt.typ, tt.pod)
			}
			if p.Kind != "Pod" || p.APIVersion != "v1" {
				t.Errorf("TypeMeta %+v, want the kind's", p.TypeMeta)
			}
		})
	}
}
