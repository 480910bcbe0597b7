package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/cloudbox/cloudbox/cloud/apiserver"
	"github.com/cloudbox/cloudbox/cloud/client"
)

// Join returns the client settings of a worker joining the master at url with a join
// token. The master's CA is fetched without verification and then checked against
// the hash the token pins, so a worker trusts exactly the master its operator named.
// Join retries while the master is unreachable, until ctx ends.
func Join(ctx context.Context, url, token string) (client.Config, error) {
	hash, secret, err := apiserver.ParseJoinToken(token)
	if err != nil {
		return client.Config{}, err
	}
	url = strings.TrimRight(url, "/")
	if hash == "" {
		return client.Config{}, fmt.Errorf("join token has no CA hash: use the full token from the master's join-token file")
	}
	backoff := 200 * time.Millisecond
	for {
		ca, err := fetchCA(ctx, url)
		if err == nil {
			if got := apiserver.CAHash(ca); got != hash {
				return client.Config{}, fmt.Errorf("the CA served at %s (sha256 %s) is not the one the join token pins (%s): wrong master or a man in the middle", url, got[:12], hash[:12])
			}
			return client.Config{Server: url, CACert: ca, Token: secret}, nil
		}
		select {
		case <-ctx.Done():
			return client.Config{}, fmt.Errorf("joining %s: %w", url, err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func fetchCA(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The CA is not trusted yet: it is verified by hash right after.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/cacerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/cacerts: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
