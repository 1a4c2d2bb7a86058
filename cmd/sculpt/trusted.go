package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// The files sculpt takes orders from — the config, the rules, the DNA
// model and the agent's experience — decide what it does to the machine as
// root. As sshd refuses an authorized_keys file that others could change,
// sculpt refuses one that is writable by its group or by others, or owned
// by anyone but root or the user running sculpt (docs/reliability.md).

// untrustedError says why a file is refused and what to run about it.
type untrustedError struct {
	Path string
	Why  string // what is wrong, naming the setting
	Fix  string // the command that makes it acceptable
}

func (e *untrustedError) Error() string {
	return fmt.Sprintf("%s %s: refused, as anyone who can change it could direct sculpt; run %s", e.Path, e.Why, e.Fix)
}

// checkTrusted checks the mode and owner of path's file (fi, from the open
// file or from stat) for a process with effective uid euid.
func checkTrusted(path string, fi os.FileInfo, euid int) error {
	if m := fi.Mode().Perm(); m&0o022 != 0 {
		who := "group and others"
		switch {
		case m&0o020 == 0:
			who = "others"
		case m&0o002 == 0:
			who = "its group"
		}
		return &untrustedError{Path: path, Why: fmt.Sprintf("is writable by %s (mode %04o)", who, m), Fix: "chmod go-w " + path}
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != euid {
		return &untrustedError{Path: path, Why: fmt.Sprintf("is owned by uid %d, neither root nor the user running sculpt (uid %d)", st.Uid, euid),
			Fix: fmt.Sprintf("chown %d %s", euid, path)}
	}
	return nil
}

// readTrusted reads path, refusing it (an *untrustedError) when its mode
// or owner, checked on the open file, lets others change it.
func readTrusted(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := checkTrusted(path, fi, os.Geteuid()); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// statTrusted checks path for a loader that opens the file itself; a file
// that does not exist passes (the loader says what that means).
func statTrusted(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return checkTrusted(path, fi, os.Geteuid())
}
