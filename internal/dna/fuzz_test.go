package dna

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// frameModel builds a model file around a header and parameter bytes, with
// the lengths and checksum right, so the fuzzer explores what lies behind
// the checksum rather than the checksum itself.
func frameModel(header, params []byte) []byte {
	b := append([]byte(ModelMagic), 0, 0)
	binary.LittleEndian.PutUint16(b[len(ModelMagic):], ModelVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(params)/8))
	b = append(b, params...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoliTable))
}

// splitModel is frameModel's inverse for a well-formed file.
func splitModel(b []byte) (header, params []byte) {
	pre := len(ModelMagic) + 2 + 4
	n := int(binary.LittleEndian.Uint32(b[len(ModelMagic)+2:]))
	return b[pre : pre+n], b[pre+n+4 : len(b)-4]
}

// FuzzParseModel feeds ParseModel whole files, and headers and parameters
// framed with the right lengths and checksum: it refuses a damaged or foreign model with an error, never
// panics and never allocates beyond what the file holds; a model it
// accepts embeds a window of frames and survives Marshal and ParseModel
// again (docs/reliability.md).
func FuzzParseModel(f *testing.F) {
	o := smallTrain
	o.Shape = ModelShape{Hidden: 2, Latent: 2, Dec: 2, Window: 2} // small seeds fuzz fast
	o.Epochs = 1
	m, err := Train(synthSeries(1, 20), o)
	if err != nil {
		f.Fatal(err)
	}
	small, err := m.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	h, p := splitModel(small)
	f.Add(h, p)
	f.Add(small, []byte{})
	f.Add([]byte(`{"features":["cpu_util"],"mean":[0],"std":[1],"shape":{"hidden":1,"latent":1,"decoder":1,"window":1}}`), []byte{})
	f.Fuzz(func(t *testing.T, header, params []byte) {
		_, _ = ParseModel(header, "raw") // the first input as a whole file
		m, err := ParseModel(frameModel(header, params), "framed")
		if err != nil {
			return
		}
		rows := make([][]float64, m.Window())
		for i := range rows {
			rows[i] = make([]float64, len(m.Features))
		}
		_ = m.NewEmbedder().Embed(rows)
		b, err := m.Marshal()
		if err != nil {
			t.Fatalf("accepted model does not marshal: %v", err)
		}
		again, err := ParseModel(b, "again")
		if err != nil {
			t.Fatalf("accepted model does not parse after Marshal: %v", err)
		}
		if b2, _ := again.Marshal(); !bytes.Equal(b, b2) {
			t.Fatal("Marshal, ParseModel, Marshal changed the file")
		}
	})
}

// A shape whose parameter count wraps around int64 onto the handful of
// parameters the file holds (here 8) would pass the count check and send
// the embedder far outside its parameters: each dimension is bounded.
func TestParseModelRefusesWrappingShape(t *testing.T) {
	header := []byte(`{"features":["cpu_util"],"mean":[0],"std":[1],"shape":{"hidden":4294967296,"latent":1,"decoder":6148914676919959554,"window":1}}`)
	l := newLayout(shape{F: 1, H: 4294967296, Z: 1, D: 6148914676919959554, W: 1})
	if l.n != 8 {
		t.Fatalf("the shape's parameter count wraps to %d, want 8 (test premise)", l.n)
	}
	_, err := ParseModel(frameModel(header, make([]byte, 8*8)), "wrap")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("bad shape")) {
		t.Fatalf("ParseModel of a wrapping shape: %v, want a bad shape error", err)
	}
}
