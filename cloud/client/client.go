// Package client is the Go client of cloudbox's REST API, used by the CLI, the agent,
// the scheduler and the controllers. Nothing outside the API server touches the store.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/cloudbox/cloudbox/cloud/api"
)

// Config says where the API is and how to authenticate.
type Config struct {
	// Server is the API's base URL, e.g. https://127.0.0.1:6443.
	Server string
	// CACert is the PEM of the cluster CA. If empty, the system roots are used.
	CACert []byte
	// Token is the bearer token.
	Token string
	// Timeout bounds each non-watch request. If zero, 30 s.
	Timeout time.Duration
	// Warnings is called with the text of each warning the server answers with (HTTP
	// Warning headers, as Kubernetes sends them: an unknown field, a legacy default).
	// It may be called from several goroutines at once. If nil, warnings are dropped.
	Warnings func(text string)
}

// Client talks to one API server. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client // for requests with a deadline
	stream  *http.Client // for watches, which have none
	timeout time.Duration
	tls     *tls.Config // for upgraded streams (exec, tunnels)
	warn    func(string)
}

// New returns a client for cfg.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.Server, "/"))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("server URL %q must look like https://HOST:PORT", cfg.Server)
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(cfg.CACert) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(cfg.CACert) {
			return nil, errors.New("CA certificate is not valid PEM")
		}
		tlsCfg.RootCAs = pool
	}
	tr := &http.Transport{
		// The transport changes its TLS config (HTTP/2 protocols) when first used; it
		// gets a copy so that Upgrade can clone the original safely meanwhile.
		TLSClientConfig:     tlsCfg.Clone(),
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	return &Client{
		base:    u,
		token:   cfg.Token,
		http:    &http.Client{Transport: tr},
		stream:  &http.Client{Transport: tr},
		timeout: cfg.Timeout,
		tls:     tlsCfg,
		warn:    cfg.Warnings,
	}, nil
}

// Server returns the base URL.
func (c *Client) Server() string { return c.base.String() }

// ListOptions narrows a List or Watch.
type ListOptions struct {
	LabelSelector string
	FieldSelector string
	Limit         int
	Continue      string
	// ResourceVersion is where a watch starts; empty means "list, then watch".
	ResourceVersion string
}

// List is one page of objects of one kind.
type List struct {
	Items           []api.Object
	ResourceVersion string
	Continue        string
}

// path builds the REST path of a kind, namespace, name and subresource.
func path(k *api.KindInfo, namespace, name, sub string) string {
	var b strings.Builder
	if k.Group == "" {
		b.WriteString("/api/" + k.Version)
	} else {
		b.WriteString("/apis/" + k.Group + "/" + k.Version)
	}
	if k.Namespaced && namespace != "" {
		b.WriteString("/namespaces/" + url.PathEscape(namespace))
	}
	b.WriteString("/" + k.Resource)
	if name != "" {
		b.WriteString("/" + url.PathEscape(name))
	}
	if sub != "" {
		b.WriteString("/" + sub)
	}
	return b.String()
}

func kindOf(obj api.Object) (*api.KindInfo, error) {
	tm := obj.GetTypeMeta()
	k, err := api.KindFor(tm.APIVersion, tm.Kind)
	if err != nil {
		if k, ok := api.LookupKind(tm.Kind); ok && tm.APIVersion == "" {
			return k, nil
		}
		return nil, err
	}
	return k, nil
}

// do sends a request and decodes a JSON answer into out (if not nil). A non-2xx
// answer becomes an *api.Status error.
func (c *Client) do(ctx context.Context, method, p string, q url.Values, contentType string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.send(ctx, c.http, method, p, q, contentType, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, p, err)
	}
	if resp.StatusCode/100 != 2 {
		return statusError(resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, p, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, hc *http.Client, method, p string, q url.Values, contentType string, body []byte) (*http.Response, error) {
	u := *c.base
	u.Path = c.base.Path + p
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err == nil && c.warn != nil {
		for _, text := range parseWarnings(resp.Header.Values("Warning")) {
			c.warn(text)
		}
	}
	return resp, err
}

// statusError decodes an error answer; a body that is not a Status still becomes one.
func statusError(code int, data []byte) error {
	var st api.Status
	if err := json.Unmarshal(data, &st); err != nil || st.Message == "" {
		st = api.Status{Status: "Failure", Code: code, Reason: http.StatusText(code), Message: strings.TrimSpace(string(data))}
		if st.Message == "" {
			st.Message = http.StatusText(code)
		}
	}
	if st.Code == 0 {
		st.Code = code
	}
	return &st
}

// Reason returns the Status reason of err ("NotFound", "Conflict", ...), or "".
func Reason(err error) string {
	var st *api.Status
	if errors.As(err, &st) {
		return st.Reason
	}
	return ""
}

// IsNotFound reports whether err is a 404 from the API.
func IsNotFound(err error) bool { return Reason(err) == "NotFound" }

// IsConflict reports whether err is a stale-resourceVersion conflict.
func IsConflict(err error) bool { return Reason(err) == "Conflict" }

// IsAlreadyExists reports whether a create found the name taken.
func IsAlreadyExists(err error) bool { return Reason(err) == "AlreadyExists" }

// IsGone reports whether a watch asked for a compacted revision.
func IsGone(err error) bool { r := Reason(err); return r == "Expired" || r == "Gone" }

func decodeAs(k *api.KindInfo, data []byte) (api.Object, error) {
	o := k.NewObject()
	if err := json.Unmarshal(data, o); err != nil {
		return nil, err
	}
	return o, nil
}

// Get reads one object.
func (c *Client) Get(ctx context.Context, k *api.KindInfo, namespace, name string) (api.Object, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, path(k, namespace, name, ""), nil, "", nil, &raw); err != nil {
		return nil, err
	}
	return decodeAs(k, raw)
}

// List reads a page of objects; namespace "" lists all namespaces.
func (c *Client) List(ctx context.Context, k *api.KindInfo, namespace string, opts ListOptions) (*List, error) {
	q := url.Values{}
	if opts.LabelSelector != "" {
		q.Set("labelSelector", opts.LabelSelector)
	}
	if opts.FieldSelector != "" {
		q.Set("fieldSelector", opts.FieldSelector)
	}
	if opts.Limit > 0 {
		q.Set("limit", strconv.Itoa(opts.Limit))
	}
	if opts.Continue != "" {
		q.Set("continue", opts.Continue)
	}
	var raw struct {
		Metadata api.ListMeta      `json:"metadata"`
		Items    []json.RawMessage `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, path(k, namespace, "", ""), q, "", nil, &raw); err != nil {
		return nil, err
	}
	l := &List{ResourceVersion: raw.Metadata.ResourceVersion, Continue: raw.Metadata.Continue}
	for _, it := range raw.Items {
		o, err := decodeAs(k, it)
		if err != nil {
			return nil, err
		}
		l.Items = append(l.Items, o)
	}
	return l, nil
}

// ListAll follows continue tokens until every page is read.
func (c *Client) ListAll(ctx context.Context, k *api.KindInfo, namespace string, opts ListOptions) (*List, error) {
	all := &List{}
	for {
		page, err := c.List(ctx, k, namespace, opts)
		if err != nil {
			return nil, err
		}
		all.Items = append(all.Items, page.Items...)
		if all.ResourceVersion == "" {
			all.ResourceVersion = page.ResourceVersion
		}
		if page.Continue == "" {
			return all, nil
		}
		opts.Continue = page.Continue
	}
}

func (c *Client) write(ctx context.Context, method string, obj api.Object, sub string) (api.Object, error) {
	k, err := kindOf(obj)
	if err != nil {
		return nil, err
	}
	m := obj.GetObjectMeta()
	name := m.Name
	if method == http.MethodPost {
		name = ""
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var raw json.RawMessage
	if err := c.do(ctx, method, path(k, m.Namespace, name, sub), nil, "application/json", body, &raw); err != nil {
		return nil, err
	}
	return decodeAs(k, raw)
}

// Create creates obj; its TypeMeta says the kind.
func (c *Client) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.write(ctx, http.MethodPost, obj, "")
}

// Update replaces obj; a resourceVersion in it is a precondition.
func (c *Client) Update(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.write(ctx, http.MethodPut, obj, "")
}

// UpdateStatus replaces obj's status through the status subresource.
func (c *Client) UpdateStatus(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.write(ctx, http.MethodPut, obj, "status")
}

// Patch applies a JSON merge patch; sub may be "status".
func (c *Client) Patch(ctx context.Context, k *api.KindInfo, namespace, name, sub string, patch []byte) (api.Object, error) {
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodPatch, path(k, namespace, name, sub), nil, "application/merge-patch+json", patch, &raw); err != nil {
		return nil, err
	}
	return decodeAs(k, raw)
}

// Delete removes an object and returns its last state. A pod bound to a node is
// only marked for deletion: its agent stops it within its grace period, then removes
// it.
func (c *Client) Delete(ctx context.Context, k *api.KindInfo, namespace, name string) (api.Object, error) {
	return c.DeleteWithGrace(ctx, k, namespace, name, nil)
}

// DeleteWithGrace is Delete with a grace period for pods; 0 removes the pod at once
// (what an agent does once the containers are stopped, and what --force does).
func (c *Client) DeleteWithGrace(ctx context.Context, k *api.KindInfo, namespace, name string, graceSeconds *int64) (api.Object, error) {
	var body []byte
	if graceSeconds != nil {
		body, _ = json.Marshal(map[string]any{"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": *graceSeconds})
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodDelete, path(k, namespace, name, ""), nil, "application/json", body, &raw); err != nil {
		return nil, err
	}
	return decodeAs(k, raw)
}

// Bind assigns a pod to a node through the binding subresource.
func (c *Client) Bind(ctx context.Context, namespace, pod, node string) error {
	k := api.KindOfType[*api.Pod]()
	body, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Binding",
		"metadata": map[string]string{"name": pod, "namespace": namespace},
		"target":   map[string]string{"kind": "Node", "name": node},
	})
	return c.do(ctx, http.MethodPost, path(k, namespace, pod, "binding"), nil, "application/json", body, nil)
}

// Raw sends a GET-like request without a body to any path (used for /readyz and
// /admin/backup) and returns the body stream; the caller closes it.
func (c *Client) Raw(ctx context.Context, method, p string) (io.ReadCloser, error) {
	return c.Stream(ctx, method, p, nil, nil)
}

// Stream sends a request with an optional streamed body and returns the answer's
// body stream, with no deadline (image pulls and imports take their time); the
// caller closes it. A non-2xx answer becomes an *api.Status error.
func (c *Client) Stream(ctx context.Context, method, p string, q url.Values, body io.Reader) (io.ReadCloser, error) {
	u := *c.base
	u.Path = c.base.Path + p
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return nil, statusError(resp.StatusCode, data)
	}
	return resp.Body, nil
}
