package sealed

import (
	"bytes"
	"testing"
)

// FuzzOpen feeds Open any bytes: it refuses what is not a whole, intact
// file of its magic, never panics, and what it accepts is exactly the body
// Seal wrote (docs/reliability.md).
func FuzzOpen(f *testing.F) {
	f.Add(Seal("sculpt-test", 1, []byte(`{"a":1}`)), []byte(`{"a":1}`))
	f.Add([]byte("sculpt-test 1 99999999999999999999 00\n"), []byte{})
	f.Add([]byte("sculpt-test 2 0 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"), []byte(nil))
	f.Fuzz(func(t *testing.T, data, body []byte) {
		if v, got, err := Open(data, "sculpt-test", "test file", 1); err == nil {
			if v != 1 || !bytes.Equal(Seal("sculpt-test", v, got), data) {
				t.Fatalf("Open accepted %q as version %d body %q, which Seal does not give back", data, v, got)
			}
		}
		v, got, err := Open(Seal("sculpt-test", 1, body), "sculpt-test", "test file", 1)
		if err != nil || v != 1 || !bytes.Equal(got, body) {
			t.Fatalf("round trip of %q: version %d body %q, %v", body, v, got, err)
		}
	})
}
