package deploy

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const kustomizePath = "deploy/kubernetes"

// manifests is the kustomize base, built and decoded strictly: a field the
// API server does not know fails here instead of at kubectl apply.
type manifests struct {
	deployments  []appsv1.Deployment
	jobs         []batchv1.Job
	services     []corev1.Service
	configMaps   map[string]corev1.ConfigMap
	secrets      map[string]corev1.Secret
	pdbs         []policyv1.PodDisruptionBudget
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	serviceAccts []corev1.ServiceAccount
}

func buildKustomize(t *testing.T) *manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	dir, err := filepath.Abs(filepath.Join(root, kustomizePath))
	if err != nil {
		t.Fatal(err)
	}
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", kustomizePath, err)
	}
	m := &manifests{configMaps: map[string]corev1.ConfigMap{}, secrets: map[string]corev1.Secret{}}
	for _, r := range rm.Resources() {
		raw, err := r.AsYAML()
		if err != nil {
			t.Fatalf("%s: %s %s: %v", kustomizePath, r.GetKind(), r.GetName(), err)
		}
		where := fmt.Sprintf("%s: %s %s", kustomizePath, r.GetKind(), r.GetName())
		decode := func(into any) {
			if err := yaml.UnmarshalStrict(raw, into); err != nil {
				t.Errorf("%s: %v", where, err)
			}
		}
		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			decode(&d)
			m.deployments = append(m.deployments, d)
		case "Job":
			var j batchv1.Job
			decode(&j)
			m.jobs = append(m.jobs, j)
		case "Service":
			var s corev1.Service
			decode(&s)
			m.services = append(m.services, s)
		case "ConfigMap":
			var c corev1.ConfigMap
			decode(&c)
			m.configMaps[c.Name] = c
		case "Secret":
			var s corev1.Secret
			decode(&s)
			m.secrets[s.Name] = s
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			decode(&p)
			m.pdbs = append(m.pdbs, p)
		case "HorizontalPodAutoscaler":
			var h autoscalingv2.HorizontalPodAutoscaler
			decode(&h)
			m.hpas = append(m.hpas, h)
		case "ServiceAccount":
			var s corev1.ServiceAccount
			decode(&s)
			m.serviceAccts = append(m.serviceAccts, s)
		default:
			t.Errorf("%s: kind %s: the test does not know it; teach it (kubernetes_test.go)", where, r.GetKind())
		}
	}
	return m
}

// isHammerImage says whether image is hammer's (any registry, any tag).
func isHammerImage(image string) bool {
	repo := image
	if i := strings.LastIndex(repo, "@"); i >= 0 {
		repo = repo[:i]
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo == "hammer" || strings.HasSuffix(repo, "/hammer")
}

// podContainer reduces a hammer container of a pod template to what the
// code decides, resolving its environment from the base's ConfigMaps and
// Secrets.
func (m *manifests) podContainer(t *testing.T, where string, c corev1.Container) container {
	t.Helper()
	where = fmt.Sprintf("%s container %s", where, c.Name)
	ct := container{where: where, args: c.Args, env: map[string]string{}}
	if len(c.Command) > 0 {
		t.Errorf("%s: command %q replaces the image's ENTRYPOINT (the hammer binary): use args", where, c.Command)
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := m.configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Errorf("%s: envFrom ConfigMap %s is not in the base", where, from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				ct.env[from.Prefix+k] = v
			}
		case from.SecretRef != nil:
			s, ok := m.secrets[from.SecretRef.Name]
			if !ok {
				t.Errorf("%s: envFrom Secret %s is not in the base", where, from.SecretRef.Name)
			}
			for k, v := range secretData(s) {
				ct.env[from.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			ct.env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secretData(m.secrets[ref.Name])[ref.Key]
			if !ok {
				t.Errorf("%s: %s: Secret %s has no key %s in the base", where, e.Name, ref.Name, ref.Key)
			}
			ct.env[e.Name] = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := m.configMaps[ref.Name].Data[ref.Key]
			if !ok {
				t.Errorf("%s: %s: ConfigMap %s has no key %s in the base", where, e.Name, ref.Name, ref.Key)
			}
			ct.env[e.Name] = v
		default:
			if strings.HasPrefix(e.Name, "HAMMER_") {
				t.Errorf("%s: %s comes from a field or resource: hammer cannot read it", where, e.Name)
			}
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for kind, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil {
			continue
		}
		if p.HTTPGet == nil {
			t.Errorf("%s: %s probe: want httpGet (the image has no shell)", where, kind)
			continue
		}
		port := p.HTTPGet.Port.IntValue()
		if p.HTTPGet.Port.StrVal != "" {
			n, ok := ports[p.HTTPGet.Port.StrVal]
			if !ok {
				t.Errorf("%s: %s probe port %q is not a named port of the container", where, kind, p.HTTPGet.Port.StrVal)
			}
			port = int(n)
		}
		ct.probes = append(ct.probes, probe{kind: kind, path: p.HTTPGet.Path, port: port})
	}
	return ct
}

func secretData(s corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// checkPod holds what every hammer pod needs: non-root, read-only root,
// resources requested and bounded.
func checkPod(t *testing.T, where string, spec corev1.PodSpec) {
	t.Helper()
	psc := spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("%s: securityContext.runAsNonRoot: want true", where)
	}
	for _, c := range spec.Containers {
		w := where + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s: securityContext.readOnlyRootFilesystem: want true", w)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s: securityContext.allowPrivilegeEscalation: want false", w)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				t.Errorf("%s: resources.requests.%s: want one (the scheduler and the HPA use it)", w, r)
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				t.Errorf("%s: resources.limits.%s: want one", w, r)
			}
		}
	}
}

func TestKubernetes(t *testing.T) {
	t.Parallel()
	c := hammer(t)
	m := buildKustomize(t)

	commands := map[string]appsv1.Deployment{}
	for _, d := range m.deployments {
		where := fmt.Sprintf("%s: Deployment %s", kustomizePath, d.Name)
		spec := d.Spec.Template.Spec
		checkPod(t, where, spec)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: selector %v does not match the pod template's labels %v", where, d.Spec.Selector, d.Spec.Template.Labels)
		}
		for _, ctr := range spec.Containers {
			if !isHammerImage(ctr.Image) {
				continue
			}
			ct := m.podContainer(t, where, ctr)
			c.check(t, ct)
			if ctr.LivenessProbe == nil || ctr.ReadinessProbe == nil {
				t.Errorf("%s container %s: want liveness (/healthz) and readiness (/readyz) probes", where, ctr.Name)
			}
			if len(ctr.Args) > 0 {
				commands[ctr.Args[0]] = d
			}
		}
	}
	for _, cmd := range []string{"api", "fanout", "deliverer", "recorder"} {
		if _, ok := commands[cmd]; !ok {
			t.Errorf("%s: no Deployment runs hammer %s", kustomizePath, cmd)
		}
	}

	// The migration Job.
	migrates := false
	for _, j := range m.jobs {
		where := fmt.Sprintf("%s: Job %s", kustomizePath, j.Name)
		checkPod(t, where, j.Spec.Template.Spec)
		for _, ctr := range j.Spec.Template.Spec.Containers {
			if isHammerImage(ctr.Image) {
				c.check(t, m.podContainer(t, where, ctr))
				migrates = migrates || slices.Equal(ctr.Args, []string{"migrate", "up"})
			}
		}
	}
	if !migrates {
		t.Errorf("%s: no Job runs hammer migrate up", kustomizePath)
	}

	// The deliverer: its grace period outlasts any request, an HPA scales it.
	if d, ok := commands["deliverer"]; ok {
		where := fmt.Sprintf("%s: Deployment %s", kustomizePath, d.Name)
		grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if grace == nil || time.Duration(*grace)*time.Second <= maxDeliveryAttemptTimeout {
			t.Errorf("%s: terminationGracePeriodSeconds %v: want above the longest delivery_attempt_timeout, %s", where, ptrString(grace), maxDeliveryAttemptTimeout)
		}
		scaled := slices.ContainsFunc(m.hpas, func(h autoscalingv2.HorizontalPodAutoscaler) bool {
			return h.Spec.ScaleTargetRef.Kind == "Deployment" && h.Spec.ScaleTargetRef.Name == d.Name
		})
		if !scaled {
			t.Errorf("%s: no HorizontalPodAutoscaler scales it", where)
		}
		if scaled && d.Spec.Replicas != nil {
			t.Errorf("%s: replicas %d: leave it to the HorizontalPodAutoscaler (kubectl apply would reset its count)", where, *d.Spec.Replicas)
		}
	}
	for _, h := range m.hpas {
		i := slices.IndexFunc(m.deployments, func(d appsv1.Deployment) bool { return d.Name == h.Spec.ScaleTargetRef.Name })
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || i < 0 {
			t.Errorf("%s: HorizontalPodAutoscaler %s: scaleTargetRef %s %s is not a Deployment of the base", kustomizePath, h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
	}

	// Services and PodDisruptionBudgets select pods of the base, and each
	// Service port reaches a container port.
	for _, s := range m.services {
		where := fmt.Sprintf("%s: Service %s", kustomizePath, s.Name)
		d, ok := m.selected(labels.SelectorFromSet(s.Spec.Selector))
		if !ok {
			t.Errorf("%s: selector %v matches no Deployment's pods", where, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !hasContainerPort(d.Spec.Template.Spec, p.TargetPort.StrVal, int32(p.TargetPort.IntValue())) {
				t.Errorf("%s: port %s targets %s, which Deployment %s does not expose", where, p.Name, p.TargetPort.String(), d.Name)
			}
		}
	}
	for cmd, d := range commands {
		if !slices.ContainsFunc(m.pdbs, func(p policyv1.PodDisruptionBudget) bool {
			sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
			return err == nil && sel.Matches(labels.Set(d.Spec.Template.Labels))
		}) {
			t.Errorf("%s: Deployment %s (hammer %s): no PodDisruptionBudget selects its pods", kustomizePath, d.Name, cmd)
		}
		if !slices.ContainsFunc(m.services, func(s corev1.Service) bool {
			return labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels))
		}) {
			t.Errorf("%s: Deployment %s (hammer %s): no Service selects its pods (metrics are scraped through one)", kustomizePath, d.Name, cmd)
		}
	}
	for _, p := range m.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil {
			t.Errorf("%s: PodDisruptionBudget %s: %v", kustomizePath, p.Name, err)
			continue
		}
		if _, ok := m.selected(sel); !ok {
			t.Errorf("%s: PodDisruptionBudget %s: selector matches no Deployment's pods", kustomizePath, p.Name)
		}
	}
}

// selected returns the Deployment whose pods sel matches.
func (m *manifests) selected(sel labels.Selector) (appsv1.Deployment, bool) {
	if sel.Empty() {
		return appsv1.Deployment{}, false
	}
	for _, d := range m.deployments {
		if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			return d, true
		}
	}
	return appsv1.Deployment{}, false
}

func hasContainerPort(spec corev1.PodSpec, name string, number int32) bool {
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if (name != "" && p.Name == name) || (name == "" && p.ContainerPort == number) {
				return true
			}
		}
	}
	return false
}

func ptrString[T any](p *T) string {
	if p == nil {
		return "(unset)"
	}
	return fmt.Sprint(*p)
}
