package api

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "sculpt.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want a 0600 socket", fi.Mode())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, l, http.NotFoundHandler()) }()
	// A live sculpt on the socket: a second one is refused.
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another sculpt") {
		t.Errorf("second listener on a live socket: %v, want refused", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left after shutdown: %v", err)
	}
	// A stale socket (its sculpt died) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = stale.Close()
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	_ = l2.Close()
}

func TestListenTCPDefaultsToLoopback(t *testing.T) {
	l, err := Listen(":0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	if ip := l.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		t.Errorf("--listen :0 bound %v, want loopback", ip)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	tok, err := TokenFile(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 64 {
		t.Errorf("created token %q: want 64 hex digits", tok)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("created token file mode %v", fi.Mode().Perm())
	}
	again, err := TokenFile(path, true)
	if err != nil || string(again) != string(tok) {
		t.Errorf("reading it back: %q, %v", again, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := TokenFile(path, false); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("a token file others may read: %v, want refused", err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := TokenFile(empty, false); err == nil {
		t.Error("an empty token file was accepted")
	}
	if _, err := TokenFile(filepath.Join(dir, "missing"), false); err == nil {
		t.Error("a missing token file was accepted without create")
	}
}
