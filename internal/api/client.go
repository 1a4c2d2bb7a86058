package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to a running sculpt.
type Client struct {
	addr  string
	base  string
	token []byte
	http  *http.Client
}

// NewClient talks to the sculpt listening on addr (a socket path or
// host:port); token, when not nil, is sent with every request.
func NewClient(addr string, token []byte) *Client {
	c := &Client{addr: addr, token: token}
	tr := &http.Transport{}
	if IsUnix(addr) {
		path := strings.TrimPrefix(addr, "unix:")
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		}
		c.base = "http://sculpt"
	} else {
		c.base = "http://" + addr
	}
	c.http = &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	return c
}

// APIError is an error answer of the server.
type APIError struct {
	Code    int
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Code) }

// WorkloadPath is the API path of one workload.
func WorkloadPath(id string) string { return "/v1/workloads/" + url.PathEscape(id) }

// Get decodes the answer to GET path into v.
func (c *Client) Get(ctx context.Context, path string, v any) error {
	return c.do(ctx, http.MethodGet, path, nil, v)
}

// Post sends body as JSON to path and decodes the answer into v.
func (c *Client) Post(ctx context.Context, path string, body, v any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, b, v)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, v any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != nil {
		req.Header.Set("Authorization", "Bearer "+string(c.token))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("sculpt at %s: %w (is `sculpt run` running with --listen %s?)", c.addr, err, c.addr)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
		}
		return &APIError{Code: resp.StatusCode, Message: eb.Error}
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
