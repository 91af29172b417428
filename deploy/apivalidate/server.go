package apivalidate

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	_ "k8s.io/kubernetes/pkg/apis/apps/install"
	_ "k8s.io/kubernetes/pkg/apis/batch/install"
	"k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	_ "k8s.io/kubernetes/pkg/apis/networking/install"
	_ "k8s.io/kubernetes/pkg/apis/policy/install"
	"k8s.io/kubernetes/pkg/registry/apps/deployment"
	"k8s.io/kubernetes/pkg/registry/apps/statefulset"
	"k8s.io/kubernetes/pkg/registry/batch/cronjob"
	"k8s.io/kubernetes/pkg/registry/batch/job"
	"k8s.io/kubernetes/pkg/registry/core/configmap"
	"k8s.io/kubernetes/pkg/registry/core/namespace"
	"k8s.io/kubernetes/pkg/registry/core/service"
	"k8s.io/kubernetes/pkg/registry/core/serviceaccount"
	"k8s.io/kubernetes/pkg/registry/networking/networkpolicy"
	"k8s.io/kubernetes/pkg/registry/policy/poddisruptionbudget"
)

// strategies are the API server's create strategies of the built-in kinds deploy/ renders: what
// kube-apiserver runs on a create (PrepareForCreate, then its validation code).
var strategies = map[schema.GroupKind]rest.RESTCreateStrategy{
	{Group: "apps", Kind: "Deployment"}:                 deployment.Strategy,
	{Group: "apps", Kind: "StatefulSet"}:                statefulset.Strategy,
	{Group: "batch", Kind: "CronJob"}:                   cronjob.Strategy,
	{Group: "batch", Kind: "Job"}:                       job.Strategy,
	{Kind: "ConfigMap"}:                                 configmap.Strategy,
	{Kind: "Namespace"}:                                 namespace.Strategy,
	{Kind: "Service"}:                                   service.Strategy,
	{Kind: "ServiceAccount"}:                            serviceaccount.Strategy,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}: networkpolicy.Strategy,
	{Group: "policy", Kind: "PodDisruptionBudget"}:      poddisruptionbudget.Strategy,
}

// serverValidation decodes a built-in object as the API server does (its versioned type, its
// defaults, its internal type) and runs the create path's checks (rest.BeforeCreate).
func serverValidation(raw []byte) error {
	obj, gvk, err := legacyscheme.Codecs.UniversalDeserializer().Decode(raw, nil, nil)
	if err != nil {
		return err
	}
	strategy, ok := strategies[gvk.GroupKind()]
	if !ok {
		return fmt.Errorf("%s: no API server validation here; add its strategy", gvk)
	}
	legacyscheme.Scheme.Default(obj)
	internal, err := legacyscheme.Scheme.ConvertToVersion(obj, schema.GroupVersion{Group: gvk.Group, Version: runtime.APIVersionInternal})
	if err != nil {
		return err
	}
	m, err := meta.Accessor(internal)
	if err != nil {
		return err
	}
	ctx := genericapirequest.WithNamespace(context.Background(), m.GetNamespace())
	resource, _ := meta.UnsafeGuessKindToResource(*gvk)
	ctx = genericapirequest.WithRequestInfo(ctx, &genericapirequest.RequestInfo{IsResourceRequest: true, Verb: "create",
		APIGroup: gvk.Group, APIVersion: gvk.Version, Namespace: m.GetNamespace(), Resource: resource.Resource, Name: m.GetName()})
	rest.FillObjectMetaSystemFields(m) // as the registry's Create does: uid, creation time
	if svc, ok := internal.(*core.Service); ok && svc.Spec.ClusterIP != "" && len(svc.Spec.ClusterIPs) == 0 {
		// The Service registry's IP allocator fills clusterIPs from clusterIP (None for a
		// headless Service) before it validates.
		svc.Spec.ClusterIPs = []string{svc.Spec.ClusterIP}
	}
	return rest.BeforeCreate(strategy, ctx, internal)
}
