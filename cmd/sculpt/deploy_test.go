package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const deployDir = "../../deploy/kubernetes"

// manifest is the part of a Kubernetes object the checks read.
type manifest struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	AutomountServiceAccountToken *bool `yaml:"automountServiceAccountToken"`
	Rules                        []any `yaml:"rules"`
	Spec                         struct {
		Ports []struct {
			Name       string `yaml:"name"`
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	ServiceAccountName           string `yaml:"serviceAccountName"`
	AutomountServiceAccountToken *bool  `yaml:"automountServiceAccountToken"`
	HostPID                      bool   `yaml:"hostPID"`
	Containers                   []struct {
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
		Env   []struct {
			Name      string `yaml:"name"`
			ValueFrom struct {
				FieldRef struct {
					FieldPath string `yaml:"fieldPath"`
				} `yaml:"fieldRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		SecurityContext struct {
			Privileged   *bool `yaml:"privileged"`
			Capabilities struct {
				Drop []string `yaml:"drop"`
				Add  []string `yaml:"add"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name     string `yaml:"name"`
		HostPath *struct {
			Path string `yaml:"path"`
		} `yaml:"hostPath"`
	} `yaml:"volumes"`
}

// readManifests parses every object of the kustomize base's resources.
func readManifests(t *testing.T) map[string]manifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var kust struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(data, &kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	objs := map[string]manifest{}
	for _, r := range kust.Resources {
		data, err := os.ReadFile(filepath.Join(deployDir, r))
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", r, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var m manifest
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", r, err)
			}
			if m.APIVersion == "" || m.Kind == "" || m.Metadata.Name == "" {
				t.Fatalf("%s: an object without apiVersion, kind or name: %+v", r, m)
			}
			objs[m.Kind+"/"+m.Metadata.Name] = m
		}
	}
	return objs
}

// TestDeployManifests checks the kustomize base against sculpt itself:
// every flag the DaemonSet passes is a flag of `sculpt run`, the roots
// and the journal it names are mounted from the host, the node name
// comes from the downward API, the capabilities are exactly the
// documented ones, the service account has no token and no rights, and
// the Service's metrics port is the one sculpt listens on.
func TestDeployManifests(t *testing.T) {
	objs := readManifests(t)
	for _, k := range []string{"Namespace/sculpt-system", "ServiceAccount/sculpt", "ClusterRole/sculpt", "ClusterRoleBinding/sculpt", "DaemonSet/sculpt", "Service/sculpt-metrics"} {
		if _, ok := objs[k]; !ok {
			t.Errorf("the base has no %s", k)
		}
	}
	ds := objs["DaemonSet/sculpt"]
	ps := ds.Spec.Template.Spec
	if !ps.HostPID || len(ps.Containers) != 1 {
		t.Fatalf("DaemonSet: want hostPID and one container, got hostPID=%v, %d containers", ps.HostPID, len(ps.Containers))
	}
	if ps.ServiceAccountName != "sculpt" || ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("DaemonSet: want service account sculpt without a mounted token")
	}
	if r := objs["ClusterRole/sculpt"].Rules; len(r) != 0 {
		t.Errorf("ClusterRole grants %v; sculpt reads nothing from the API server (update docs/kubernetes.md with a rule)", r)
	}
	c := ps.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "run" {
		t.Fatalf("DaemonSet: args %v do not start with run", c.Args)
	}

	// Every flag is one `sculpt run` knows.
	cmd := newRootCmd(&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	runCmd, _, err := cmd.Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]string{}
	for _, a := range c.Args[1:] {
		name, val, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || (runCmd.Flags().Lookup(name) == nil && runCmd.InheritedFlags().Lookup(name) == nil) {
			t.Errorf("DaemonSet arg %q is not a flag of sculpt run", a)
		}
		flags[name] = val
	}

	// The roots, the journal and the NRI socket's directory are mounted from the host.
	mountOf := func(p string) (host string, ok bool) {
		best := ""
		for _, m := range c.VolumeMounts {
			if (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) && len(m.MountPath) > len(best) {
				best = m.MountPath
				for _, v := range ps.Volumes {
					if v.Name == m.Name && v.HostPath != nil {
						host, ok = path.Join(v.HostPath.Path, strings.TrimPrefix(p, m.MountPath)), true
					} else if v.Name == m.Name {
						host, ok = "", false
					}
				}
			}
		}
		return host, ok
	}
	for flag, host := range map[string]string{"proc-root": "/proc", "sys-root": "/sys", "cgroup-root": "/sys/fs/cgroup", "journal": "/var/lib/sculpt/journal.json", "experience": "/var/lib/sculpt/experience.json", "nri-socket": "/var/run/nri/nri.sock"} {
		v, ok := flags[flag]
		if !ok {
			t.Errorf("DaemonSet does not pass --%s", flag)
			continue
		}
		if got, ok := mountOf(v); !ok || got != host {
			t.Errorf("--%s=%s is the host's %q (hostPath: %v), want %s", flag, v, got, ok, host)
		}
	}
	if _, ok := flags["nri"]; !ok {
		t.Error("DaemonSet does not pass --nri")
	}

	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.ValueFrom.FieldRef.FieldPath
	}
	if env["NODE_NAME"] != "spec.nodeName" {
		t.Errorf("NODE_NAME should come from the downward API's spec.nodeName, got %q", env["NODE_NAME"])
	}

	sc := c.SecurityContext
	if sc.Privileged == nil || *sc.Privileged {
		t.Error("the container must say privileged: false")
	}
	wantCaps := []string{"BPF", "DAC_READ_SEARCH", "NET_ADMIN", "PERFMON", "SYS_ADMIN", "SYS_NICE", "SYS_PTRACE"}
	got := slices.Sorted(slices.Values(sc.Capabilities.Add))
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) || !slices.Equal(got, wantCaps) {
		t.Errorf("capabilities: drop %v add %v, want drop [ALL] add %v (docs/kubernetes.md)", sc.Capabilities.Drop, got, wantCaps)
	}
	doc, err := os.ReadFile("../../docs/kubernetes.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cp := range wantCaps {
		if !strings.Contains(string(doc), "CAP_"+cp) {
			t.Errorf("docs/kubernetes.md does not explain CAP_%s", cp)
		}
	}

	// The metrics port: sculpt's --listen, the container port and the Service agree.
	_, port, _ := strings.Cut(flags["listen"], ":")
	svc := objs["Service/sculpt-metrics"]
	if len(c.Ports) != 1 || c.Ports[0].Name != "metrics" || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != "metrics" {
		t.Fatalf("want one container port named metrics and the Service targeting it: %+v / %+v", c.Ports, svc.Spec.Ports)
	}
	if p := c.Ports[0].ContainerPort; port == "" || port != strconv.Itoa(p) {
		t.Errorf("--listen=%s does not serve the container port %d", flags["listen"], p)
	}
}
