// Command mkinitramfs writes the initramfs of the sculpt VM test: a newc cpio
// archive holding the given files plus the directories and device nodes a
// static Go /init needs (/dev/console above all: without it the kernel gives
// init no stdout and nothing is printed). Writing the archive directly makes
// device nodes without root or mknod.
//
//	mkinitramfs -o initrd.cpio /init=./init /sculpt=./sculpt
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

func main() {
	out := flag.String("o", "initrd.cpio", "archive to write")
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "mkinitramfs:", err)
		os.Exit(1)
	}
}

func run(out string, args []string) error {
	files := map[string]string{}
	for _, a := range args {
		dst, src, ok := strings.Cut(a, "=")
		if !ok || !strings.HasPrefix(dst, "/") {
			return fmt.Errorf("argument %q: want /path/in/image=host/path", a)
		}
		files[dst] = src
	}
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	w := &writer{w: f, ino: 1}
	if err := w.image(files); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

// Mode bits of cpio entries (as in stat(2)).
const (
	modeDir  = 0o040000
	modeFile = 0o100000
	modeChar = 0o020000
)

type writer struct {
	w   io.Writer
	ino int
	off int64
}

func (w *writer) image(files map[string]string) error {
	for _, d := range []string{"dev", "proc", "sys", "tmp", "root"} {
		if err := w.entry(d, modeDir|0o755, 0, 0, nil); err != nil {
			return err
		}
	}
	if err := w.entry("dev/console", modeChar|0o600, 5, 1, nil); err != nil {
		return err
	}
	if err := w.entry("dev/null", modeChar|0o666, 1, 3, nil); err != nil {
		return err
	}
	names := make([]string, 0, len(files))
	for dst := range files {
		names = append(names, dst)
	}
	sort.Strings(names)
	for _, dst := range names {
		data, err := os.ReadFile(files[dst])
		if err != nil {
			return err
		}
		if err := w.entry(strings.TrimPrefix(dst, "/"), modeFile|0o755, 0, 0, data); err != nil {
			return err
		}
	}
	return w.entry("TRAILER!!!", 0, 0, 0, nil)
}

// entry writes one newc header, name and data, each padded to 4 bytes.
func (w *writer) entry(name string, mode uint32, rmajor, rminor int, data []byte) error {
	w.ino++
	nlink := 1
	if mode&modeDir == modeDir {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		w.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rmajor, rminor, len(name)+1, 0)
	if err := w.write([]byte(hdr + name + "\x00")); err != nil {
		return err
	}
	if err := w.pad(); err != nil {
		return err
	}
	if err := w.write(data); err != nil {
		return err
	}
	return w.pad()
}

func (w *writer) write(b []byte) error {
	n, err := w.w.Write(b)
	w.off += int64(n)
	return err
}

func (w *writer) pad() error {
	if r := w.off % 4; r != 0 {
		return w.write(make([]byte, 4-r))
	}
	return nil
}
