package api

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecodeManifests feeds arbitrary bytes to the manifest decoder. It must never
// panic, and every object it returns must survive what the API server does with it:
// encode it, decode it as a request body, encode it again to the same JSON; default,
// validate, select and copy it.
func FuzzDecodeManifests(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "manifests", "*"))
	legacy, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "manifests", "legacy", "*"))
	files = append(files, legacy...)
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		`{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "creationTimestamp": "2024-01-02T03:04:05Z"}}`,
		`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"},"status":{"capacity":{"cpu":"4","memory":"8Gi"}}}]}`,
		`{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":80}]}]}}]}{"kind":"Namespace","apiVersion":"v1","metadata":{"name":"x"}}`,
		"apiVersion: apps/v1beta1\nkind: TestDeployment\nmetadata: {name: d}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx, resources: {limits: {cpu: 1e3, memory: 1Ei}}}]\n",
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {a: b}\nspec:\n  containers:\n  - name: c\n    image: busybox\n    livenessProbe:\n      httpGet: {port: http, path: /}\n    env: [{name: A, value: '1'}]\n  affinity:\n    nodeAffinity: {x: [1, {y: z}]}\n  tolerations: [{operator: Exists}]\n",
		"--- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n---\n# comment\n---\n",
		"a: &a [*a]\n",
		"apiVersion: v1\nkind: Pod\nmetadata: {name: p, creationTimestamp: '0000-01-01T00:30:00+01:00'}\n",
		"apiVersion: compute/v1\nkind: Instance\nmetadata: {name: vm1}\nspec: {flavor: m1.tiny, image: cirros, keyPair: k, userData: '#cloud-config', volumes: [data], networks: [pod], powerState: Stopped, reboot: {type: hard, id: '1'}}\n",
		"apiVersion: compute/v1\nkind: Flavor\nmetadata: {name: m1.x}\nspec: {vcpus: 2, ramMB: 1024, diskGB: 10}\n",
		"apiVersion: compute/v1\nkind: Image\nmetadata: {name: k}\nspec: {type: kernel, cmdline: console=ttyS0}\nstatus: {phase: Active, files: [{role: kernel, size: 1, sha256: ab}]}\n",
		"apiVersion: compute/v1\nkind: Volume\nmetadata: {name: data}\nspec: {sizeGB: 1}\nstatus: {phase: in-use, attachments: [{instance: vm1}]}\n",
		"apiVersion: compute/v1\nkind: KeyPair\nmetadata: {name: k}\nspec: {publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFfNh/WlnN9oQVRkwJYKbnSqytnNka9GLKnMphny7nig u@h'}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		objs, _, err := DecodeManifestsWithWarnings(bytes.NewReader(data))
		checkFieldValidations(t, data, objs, err)
		if err != nil {
			return
		}
		for _, obj := range objs {
			js, err := json.Marshal(obj)
			if err != nil {
				t.Fatalf("encoding a decoded %T: %v", obj, err)
			}
			k, ok := KindOf(obj)
			if !ok {
				t.Fatalf("decoded an object of unregistered type %T", obj)
			}
			back, err := DecodeObject(k, js)
			if err != nil {
				t.Fatalf("decoding what was encoded: %v\n%s", err, js)
			}
			js2, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(js, js2) {
				t.Fatalf("round trip changed the object:\n%s\n%s", js, js2)
			}

			c := DeepCopy(obj)
			if !reflect.DeepEqual(c, obj) {
				t.Fatalf("DeepCopy differs")
			}
			Default(obj)
			_ = Validate(obj)
			_ = ValidateUpdate(c, obj)
			_ = FieldsOf(obj)
			if _, err := json.Marshal(obj); err != nil {
				t.Fatalf("encoding a defaulted %T: %v", obj, err)
			}
		}
	})
}

// checkFieldValidations checks that Ignore decodes what Warn does, and Strict the same
// or nothing: the directive decides what is said about dropped fields, not what an
// object becomes.
func checkFieldValidations(t *testing.T, data []byte, warnObjs []Object, warnErr error) {
	ignored, _, err := Decoder{FieldValidation: FieldValidationIgnore}.Manifests(bytes.NewReader(data))
	if (err == nil) != (warnErr == nil) || !reflect.DeepEqual(ignored, warnObjs) {
		t.Fatalf("Ignore decoded %d objects (error %v), Warn %d (error %v)", len(ignored), err, len(warnObjs), warnErr)
	}
	strict, _, err := Decoder{FieldValidation: FieldValidationStrict}.Manifests(bytes.NewReader(data))
	if err == nil && (warnErr != nil || !reflect.DeepEqual(strict, warnObjs)) {
		t.Fatalf("Strict decoded %d objects, Warn %d (error %v)", len(strict), len(warnObjs), warnErr)
	}
}
