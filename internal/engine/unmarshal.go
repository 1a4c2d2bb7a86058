package engine

import (
	"encoding/json"
	"errors"

	"sculpt/internal/hal"
)

// UnmarshalJSON reads what MarshalJSON wrote (a client of the API).
func (p *PlannedAction) UnmarshalJSON(b []byte) error {
	var in struct {
		Action *hal.JSONAction `json:"action"`
		Reason string          `json:"reason"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*p = PlannedAction{Reason: in.Reason}
	if in.Action != nil {
		p.Action = in.Action.Action
	}
	return nil
}

// UnmarshalJSON reads what MarshalJSON wrote (a client of the API).
func (a *AppliedAction) UnmarshalJSON(b []byte) error {
	var in struct {
		Workload string          `json:"workload"`
		Action   *hal.JSONAction `json:"action"`
		Undo     *hal.JSONAction `json:"undo"`
		Reason   string          `json:"reason"`
		Error    string          `json:"error"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*a = AppliedAction{Workload: in.Workload, Reason: in.Reason}
	if in.Action != nil {
		a.Action = in.Action.Action
	}
	if in.Undo != nil {
		a.Undo = in.Undo.Action
	}
	if in.Error != "" {
		a.Err = errors.New(in.Error)
	}
	return nil
}

// UnmarshalJSON reads what MarshalJSON wrote (a client of the API).
func (r *Refusal) UnmarshalJSON(b []byte) error {
	var in struct {
		Workload string          `json:"workload"`
		Action   *hal.JSONAction `json:"action"`
		Reason   string          `json:"reason"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*r = Refusal{Workload: in.Workload, Reason: in.Reason}
	if in.Action != nil {
		r.Action = in.Action.Action
	}
	return nil
}
