package api

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigMapAndSecretValidation(t *testing.T) {
	cm := &ConfigMap{ObjectMeta: ObjectMeta{Name: "app.config", Namespace: "default"},
		Data: map[string]string{"good.key": "v", "bad/key": "v"}}
	Default(cm)
	err := Validate(cm)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "data[bad/key]") {
		t.Fatalf("configmap with a bad key: %v", err)
	}
	s := &Secret{ObjectMeta: ObjectMeta{Name: "db", Namespace: "default"}, StringData: map[string]string{"password": "hunter2"}}
	Default(s)
	if string(s.Data["password"]) != "hunter2" || s.StringData != nil || s.Type != SecretTypeOpaque {
		t.Fatalf("stringData not folded into data: %+v", s)
	}
	if err := Validate(s); err != nil {
		t.Fatal(err)
	}
	yes := true
	old := &ConfigMap{ObjectMeta: ObjectMeta{Name: "c", Namespace: "default"}, Data: map[string]string{"a": "1"}, Immutable: &yes}
	cur := DeepCopy(old).(*ConfigMap)
	cur.Data["a"] = "2"
	if err := ValidateUpdate(old, cur); err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("changing an immutable configmap: %v", err)
	}
	big := &ConfigMap{ObjectMeta: ObjectMeta{Name: "big", Namespace: "default"}, Data: map[string]string{"k": strings.Repeat("x", 1<<20+1)}}
	if err := Validate(big); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("oversized configmap: %v", err)
	}
}

func TestConfigMapDecodes(t *testing.T) {
	objs, err := DecodeManifests(strings.NewReader("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  a: \"1\"\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n  k: aGk=\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cm := objs[0].(*ConfigMap); cm.Data["a"] != "1" {
		t.Fatalf("configmap: %+v", cm)
	}
	if s := objs[1].(*Secret); string(s.Data["k"]) != "hi" {
		t.Fatalf("secret data not base64-decoded: %q", s.Data["k"])
	}
}
