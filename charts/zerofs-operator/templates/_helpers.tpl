{{/* Chart name, truncated to a DNS label. */}}
{{- define "zerofs-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name. */}}
{{- define "zerofs-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "zerofs-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zerofs-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "zerofs-operator.labels" -}}
{{ include "zerofs-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: zerofs
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "zerofs-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "zerofs-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "zerofs-operator.leaseName" -}}
{{- include "zerofs-operator.fullname" . -}}
{{- end -}}

{{- define "zerofs-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "zerofs-operator.serverImage" -}}
{{- printf "%s:%s" .Values.serverImage.repository (default .Chart.AppVersion .Values.serverImage.tag) -}}
{{- end -}}

{{- /*
What the reconcile calls, verb by verb (operator/src; the k8s tests run the operator with these
rules and fail on any missing permission):
 - zerofsvolumes: list/watch (informer), get (fresh read before deletion), patch (finalizer);
   status: patch (server-side apply); finalizers: update (owner references with
   blockOwnerDeletion need it on the owner).
 - Deployments, Services, NetworkPolicies, claims: list/watch (informers), get (metadata read
   before the first apply: never take over someone else's object), create + patch (server-side
   apply creates and updates). Deployments are patched to 0 replicas before data deletion.
 - claims: delete (the consumers' claim on volume deletion, cache claims of an old setting).
 - Secrets: get (the Secrets a volume references and the operator's copy; their names are only
   known from a volume, so they cannot be listed by name), list/watch metadata only, create +
   patch (its own password copy). Never delete: garbage collection removes the copy.
 - Jobs: list/watch, create, delete (password changes). Pods: list (is the server stopped? does a
   pod mount the volume? a failed Job's message).
 - Events: create, patch (repeat counts).
 - PersistentVolumes are cluster-scoped: get/list/watch/create/patch/delete in a ClusterRole,
   always. With watchNamespace set, everything else is a Role in that namespace.
 - StorageClass provisioner (zerofs.io/nfs): StorageClasses get/list/watch (cluster-scoped);
   claims' status patch (the resizer's part: capacity after an expansion); ZeroFSVolumes create
   and delete (dedicated mode: one volume per claim, deleted with reclaimPolicy Delete).
*/}}
{{- define "zerofs-operator.namespacedRules" }}
  - apiGroups: ["zerofs.io"]
    resources: ["zerofsvolumes"]
    verbs: ["get", "list", "watch", "patch", "create", "delete"]
  - apiGroups: ["zerofs.io"]
    resources: ["zerofsvolumes/status"]
    verbs: ["patch"]
  - apiGroups: ["zerofs.io"]
    resources: ["zerofsvolumes/finalizers"]
    verbs: ["update"]
  - apiGroups: ["apps"]
    resources: ["deployments"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: [""]
    resources: ["services"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: ["networking.k8s.io"]
    resources: ["networkpolicies"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: [""]
    resources: ["persistentvolumeclaims"]
    verbs: ["get", "list", "watch", "create", "patch", "delete"]
  - apiGroups: [""]
    resources: ["persistentvolumeclaims/status"]
    verbs: ["patch"]
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get", "list", "watch", "create", "patch"]
  - apiGroups: ["batch"]
    resources: ["jobs"]
    verbs: ["list", "watch", "create", "delete"]
  - apiGroups: [""]
    resources: ["pods"]
    verbs: ["list"]
  - apiGroups: [""]
    resources: ["events"]
    verbs: ["create", "patch"]
{{- end }}
{{- define "zerofs-operator.clusterRules" }}
  - apiGroups: [""]
    resources: ["persistentvolumes"]
    verbs: ["get", "list", "watch", "create", "patch", "delete"]
  - apiGroups: ["storage.k8s.io"]
    resources: ["storageclasses"]
    verbs: ["get", "list", "watch"]
{{- end }}
