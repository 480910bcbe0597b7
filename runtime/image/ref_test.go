package image

import (
	"errors"
	"testing"
)

func TestNormalize(t *testing.T) {
	const dgst = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "library/busybox:1.36", want: "docker.io/library/busybox:1.36"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest"},
		{in: "index.docker.io/library/busybox:1", want: "docker.io/library/busybox:1"},
		{in: "grafana/grafana:10", want: "docker.io/grafana/grafana:10"},
		{in: "quay.io/coreos/etcd:v3", want: "quay.io/coreos/etcd:v3"},
		{in: "localhost:5000/app", want: "localhost:5000/app:latest"},
		{in: "127.0.0.1:5000/a/b/c:t", want: "127.0.0.1:5000/a/b/c:t"},
		{in: "busybox@" + dgst, want: "docker.io/library/busybox@" + dgst},
		{in: "Busybox", err: true},
		{in: "", err: true},
		{in: "busybox:", err: true},
	}
	for _, tt := range tests {
		got, err := Normalize(tt.in)
		if tt.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Normalize(%q) = %q, %v; want an ErrInvalid", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestMirrorRef(t *testing.T) {
	tests := []struct {
		canon, mirror, want string
		plainHTTP, err      bool
	}{
		{canon: "docker.io/library/busybox:1.36", mirror: "http://127.0.0.1:5000", want: "127.0.0.1:5000/library/busybox:1.36", plainHTTP: true},
		{canon: "docker.io/library/busybox:1.36", mirror: "mirror.local", want: "mirror.local/library/busybox:1.36"},
		{canon: "docker.io/library/busybox:1.36", mirror: "https://harbor.lan/dockerhub/", want: "harbor.lan/dockerhub/library/busybox:1.36"},
		{canon: "quay.io/a/b@sha256:00", mirror: "http://m:1", want: "m:1/a/b@sha256:00", plainHTTP: true},
		{canon: "localhost:5000/app:v1", mirror: "http://m:1", want: "m:1/app:v1", plainHTTP: true},
		{canon: "docker.io/library/busybox:1", mirror: "ftp://m", err: true},
		{canon: "docker.io/library/busybox:1", mirror: "http://", err: true},
	}
	for _, tt := range tests {
		got, plain, err := mirrorRef(tt.canon, tt.mirror)
		if tt.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("mirrorRef(%q, %q) = %q, %v; want an ErrInvalid", tt.canon, tt.mirror, got, err)
			}
			continue
		}
		if err != nil || got != tt.want || plain != tt.plainHTTP {
			t.Errorf("mirrorRef(%q, %q) = %q, %v, %v; want %q, %v", tt.canon, tt.mirror, got, plain, err, tt.want, tt.plainHTTP)
		}
	}
}
