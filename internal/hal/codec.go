package hal

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// decoders maps each action kind to its decoder.
var decoders = map[string]func([]byte) (Action, error){
	PinThreads{}.Kind():   decode[PinThreads],
	SetSched{}.Kind():     decode[SetSched],
	SetCgroupCPU{}.Kind(): decode[SetCgroupCPU],
	SetCpuset{}.Kind():    decode[SetCpuset],
	MoveToCgroup{}.Kind(): decode[MoveToCgroup],
	CreateCgroup{}.Kind(): decode[CreateCgroup],
	RemoveCgroup{}.Kind(): decode[RemoveCgroup],
	BlkioWeight{}.Kind():  decode[BlkioWeight],
	BlkioLimit{}.Kind():   decode[BlkioLimit],
	MemMigrate{}.Kind():   decode[MemMigrate],
	MemBind{}.Kind():      decode[MemBind],
	IRQAffinity{}.Kind():  decode[IRQAffinity],
	QueueMask{}.Kind():    decode[QueueMask],
	Channels{}.Kind():     decode[Channels],
	SetVFs{}.Kind():       decode[SetVFs],
	CreateVNIC{}.Kind():   decode[CreateVNIC],
	DeleteVNIC{}.Kind():   decode[DeleteVNIC],
}

func decode[T Action](b []byte) (Action, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func decodeSteps(b []byte) (Action, error) {
	var raw struct {
		Steps []json.RawMessage `json:"steps"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	s := Steps{Steps: make([]Action, 0, len(raw.Steps))}
	for i, r := range raw.Steps {
		a, err := UnmarshalAction(r)
		if err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		s.Steps = append(s.Steps, a)
	}
	return s, nil
}

// MarshalAction encodes a as a JSON object whose first member is "kind".
func MarshalAction(a Action) ([]byte, error) {
	if a == nil {
		return []byte("null"), nil
	}
	var body []byte
	var err error
	if s, ok := a.(Steps); ok {
		steps := make([]json.RawMessage, len(s.Steps))
		for i, st := range s.Steps {
			if steps[i], err = MarshalAction(st); err != nil {
				return nil, err
			}
		}
		body, err = json.Marshal(struct {
			Steps []json.RawMessage `json:"steps"`
		}{steps})
	} else {
		body, err = json.Marshal(a)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s action: %w", a.Kind(), err)
	}
	kind, _ := json.Marshal(a.Kind())
	var b bytes.Buffer
	b.WriteString(`{"kind":`)
	b.Write(kind)
	if len(body) > 2 {
		b.WriteByte(',')
		b.Write(body[1:])
	} else {
		b.WriteByte('}')
	}
	return b.Bytes(), nil
}

// UnmarshalAction decodes an action written by MarshalAction; "null" gives
// a nil action.
func UnmarshalAction(b []byte) (Action, error) {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil, nil
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("decode action: %w", err)
	}
	dec, ok := decoders[head.Kind]
	if head.Kind == (Steps{}).Kind() {
		dec, ok = decodeSteps, true
	}
	if !ok {
		return nil, fmt.Errorf("decode action: unknown kind %q", head.Kind)
	}
	a, err := dec(b)
	if err != nil {
		return nil, fmt.Errorf("decode %s action: %w", head.Kind, err)
	}
	return a, nil
}

// JSONAction wraps an Action so it can be a field of a JSON document.
type JSONAction struct{ Action Action }

// MarshalJSON implements json.Marshaler.
func (j JSONAction) MarshalJSON() ([]byte, error) { return MarshalAction(j.Action) }

// UnmarshalJSON implements json.Unmarshaler.
func (j *JSONAction) UnmarshalJSON(b []byte) error {
	a, err := UnmarshalAction(b)
	if err != nil {
		return err
	}
	j.Action = a
	return nil
}

// TargetPID returns the process an action changes, or 0 when it changes no
// single process (a cgroup, an IRQ, a NIC). For Steps it is the first
// step's process.
func TargetPID(a Action) int {
	switch a := a.(type) {
	case PinThreads:
		return a.PID
	case SetSched:
		return a.PID
	case MoveToCgroup:
		return a.PID
	case MemMigrate:
		return a.PID
	case Steps:
		for _, s := range a.Steps {
			if p := TargetPID(s); p != 0 {
				return p
			}
		}
	}
	return 0
}
