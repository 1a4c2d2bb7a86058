package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultSocket is where sculpt run listens by default.
const DefaultSocket = "/run/sculpt/sculpt.sock"

// DefaultTokenFile holds the bearer token of a TCP listener by default.
const DefaultTokenFile = "/run/sculpt/token"

// IsUnix reports whether addr names a unix socket (a path) rather than a
// TCP host:port.
func IsUnix(addr string) bool {
	return strings.HasPrefix(addr, "/") || strings.HasPrefix(addr, "./") || strings.HasPrefix(addr, "unix:")
}

// Listen opens addr: a unix socket path (created mode 0600, its directory
// 0700 when sculpt creates it; a stale socket left by a sculpt that died is
// replaced, a live one is an error), or a TCP host:port, on loopback when
// the host is empty.
func Listen(addr string) (net.Listener, error) {
	if !IsUnix(addr) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("listen %q: want a socket path or host:port: %w", addr, err)
		}
		if host == "" {
			host = "127.0.0.1"
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return l, nil
	}
	path := strings.TrimPrefix(addr, "unix:")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if _, err := os.Lstat(path); err == nil {
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("listen on %s: another sculpt is serving there", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
		}
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("chmod 0600 %s: %w", path, err)
	}
	return l, nil
}

// TokenFile reads the bearer token at path, creating it (mode 0600, 32
// random bytes in hex) when create is set and it does not exist. A token
// file that group or others may read is refused.
func TokenFile(path string, create bool) ([]byte, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) && create {
		b := make([]byte, 32)
		_, _ = rand.Read(b) // never fails (crypto/rand)
		tok := hex.EncodeToString(b)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("token file %s: %w", path, err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create token file %s: %w", path, err)
		}
		if _, err := f.WriteString(tok + "\n"); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("write token file %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("write token file %s: %w", path, err)
		}
		return []byte(tok), nil
	}
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token file %s is mode %04o: want 0600 (no access for group or others)", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return nil, fmt.Errorf("token file %s is empty", path)
	}
	return []byte(tok), nil
}

// Serve serves s on l until ctx is done, then shuts down, giving requests
// in flight a few seconds. It returns when the server has stopped; a unix
// socket's file is removed.
func Serve(ctx context.Context, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	serveErr := <-done
	if err != nil {
		return fmt.Errorf("shut down %s: %w", l.Addr(), err)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", l.Addr(), serveErr)
	}
	return nil
}
