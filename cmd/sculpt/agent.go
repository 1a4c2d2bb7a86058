package main

import (
	"errors"

	"sculpt/internal/engine"
	"sculpt/internal/engine/agent"
)

// newAgent returns the agent of `sculpt run`: the learning agent in apply
// mode (unless --agent none), nil (the rules alone) otherwise. An
// experience file that cannot be used is refused with its reason, and the
// run goes on with the rules alone, as the issue of trust asks: a bad file
// must never stop sculpt from running, nor be overwritten.
func (a *app) newAgent(fl engineFlags, cfg engine.Config) (engine.Agent, error) {
	switch fl.agent {
	case "none":
		return nil, nil
	case "sculpt", "":
	default:
		return nil, usagef("--agent %s: want sculpt or none", flagValue(fl.agent))
	}
	if fl.mode != engine.ModeApply {
		return nil, nil // advise shows the rules' plan: the agent learns from what it applies
	}
	if err := statTrusted(fl.experience); err != nil {
		var ue *untrustedError
		if errors.As(err, &ue) {
			a.log.Error("the agent is off: its experience file is refused; the rules alone decide", "err", err)
			return nil, nil
		}
		return nil, err
	}
	x, err := agent.LoadExperience(fl.experience)
	if err != nil {
		if errors.Is(err, agent.ErrExperience) {
			a.log.Error("the agent is off: its experience file is refused; the rules alone decide", "err", err)
			return nil, nil
		}
		return nil, err
	}
	l, err := agent.New(agent.Options{Config: cfg.Agent, Experience: x, Path: fl.experience})
	if err != nil {
		return nil, err
	}
	a.log.Info("learning agent on", "experience", fl.experience, "entries", len(x.Entries), "objectives", len(cfg.Objectives))
	return l, nil
}
