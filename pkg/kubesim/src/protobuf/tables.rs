//! The message tables: field numbers, JSON names and types of the Kubernetes messages the
//! generators send, from the `generated.proto` files of `k8s.io/api` and `k8s.io/apimachinery`.

use crate::kinds::KindInfo;

/// The type of a field's value.
#[derive(Clone, Copy)]
pub(super) enum Ty {
    Str,
    /// Bytes, as base64 in JSON.
    Bytes,
    Int,
    Bool,
    /// `meta.v1.Time`: seconds and nanos, as RFC 3339.
    Time,
    /// `intstr.IntOrString`.
    IntOrStr,
    /// `resource.Quantity`: one string.
    Quantity,
    Msg(&'static [Field]),
    /// An embedded message whose fields JSON shows in the parent (`json:",inline"`).
    Inline(&'static [Field]),
    /// `map<string, V>` (entries with key 1 and value 2).
    Map(&'static Ty),
}

/// One field of a message.
#[derive(Clone, Copy)]
pub(super) struct Field {
    pub(super) num: u64,
    pub(super) name: &'static str,
    pub(super) ty: Ty,
    pub(super) repeated: bool,
    /// A pointer field: its zero value is meaningful and kept.
    pub(super) keep_zero: bool,
}

pub(super) const fn f(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
        keep_zero: false,
    }
}

const fn list(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        repeated: true,
        ..f(num, name, ty)
    }
}

pub(super) const fn ptr(num: u64, name: &'static str, ty: Ty) -> Field {
    Field {
        keep_zero: true,
        ..f(num, name, ty)
    }
}

const STR_MAP: Ty = Ty::Map(&Ty::Str);

pub(super) const TYPE_META: &[Field] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];

const OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    ptr(6, "controller", Ty::Bool),
    ptr(7, "blockOwnerDeletion", Ty::Bool),
];

const OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::Int),
    f(8, "creationTimestamp", Ty::Time),
    f(11, "labels", STR_MAP),
    f(12, "annotations", STR_MAP),
    list(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    list(14, "finalizers", Ty::Str),
];

const LOCAL_OBJECT_REFERENCE: &[Field] = &[f(1, "name", Ty::Str)];

const OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
];

const LABEL_SELECTOR_REQUIREMENT: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    list(3, "values", Ty::Str),
];

const LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", STR_MAP),
    list(2, "matchExpressions", Ty::Msg(LABEL_SELECTOR_REQUIREMENT)),
];

const CONTAINER_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "hostPort", Ty::Int),
    f(3, "containerPort", Ty::Int),
    f(4, "protocol", Ty::Str),
    f(5, "hostIP", Ty::Str),
];

const ENV_VAR: &[Field] = &[f(1, "name", Ty::Str), f(2, "value", Ty::Str)];

const RESOURCES: &[Field] = &[
    f(1, "limits", Ty::Map(&Ty::Quantity)),
    f(2, "requests", Ty::Map(&Ty::Quantity)),
];

const VOLUME_MOUNT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "readOnly", Ty::Bool),
    f(3, "mountPath", Ty::Str),
    f(4, "subPath", Ty::Str),
];

const CONTAINER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "image", Ty::Str),
    list(3, "command", Ty::Str),
    list(4, "args", Ty::Str),
    f(5, "workingDir", Ty::Str),
    list(6, "ports", Ty::Msg(CONTAINER_PORT)),
    list(7, "env", Ty::Msg(ENV_VAR)),
    f(8, "resources", Ty::Msg(RESOURCES)),
    list(9, "volumeMounts", Ty::Msg(VOLUME_MOUNT)),
    f(13, "terminationMessagePath", Ty::Str),
    f(14, "imagePullPolicy", Ty::Str),
    f(16, "stdin", Ty::Bool),
    f(17, "stdinOnce", Ty::Bool),
    f(18, "tty", Ty::Bool),
    f(20, "terminationMessagePolicy", Ty::Str),
];

const TOLERATION: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    f(3, "value", Ty::Str),
    f(4, "effect", Ty::Str),
    ptr(5, "tolerationSeconds", Ty::Int),
];

const POD_SPEC: &[Field] = &[
    list(2, "containers", Ty::Msg(CONTAINER)),
    f(3, "restartPolicy", Ty::Str),
    ptr(4, "terminationGracePeriodSeconds", Ty::Int),
    ptr(5, "activeDeadlineSeconds", Ty::Int),
    f(6, "dnsPolicy", Ty::Str),
    f(7, "nodeSelector", STR_MAP),
    f(8, "serviceAccountName", Ty::Str),
    f(10, "nodeName", Ty::Str),
    f(11, "hostNetwork", Ty::Bool),
    list(15, "imagePullSecrets", Ty::Msg(LOCAL_OBJECT_REFERENCE)),
    f(16, "hostname", Ty::Str),
    f(17, "subdomain", Ty::Str),
    f(19, "schedulerName", Ty::Str),
    list(20, "initContainers", Ty::Msg(CONTAINER)),
    ptr(21, "automountServiceAccountToken", Ty::Bool),
    list(22, "tolerations", Ty::Msg(TOLERATION)),
    f(24, "priorityClassName", Ty::Str),
];

const POD_TEMPLATE_SPEC: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(POD_SPEC)),
];

const ROLLING_UPDATE_DEPLOYMENT: &[Field] = &[
    f(1, "maxUnavailable", Ty::IntOrStr),
    f(2, "maxSurge", Ty::IntOrStr),
];

const DEPLOYMENT_STRATEGY: &[Field] = &[
    f(1, "type", Ty::Str),
    f(2, "rollingUpdate", Ty::Msg(ROLLING_UPDATE_DEPLOYMENT)),
];

const DEPLOYMENT_SPEC: &[Field] = &[
    ptr(1, "replicas", Ty::Int),
    f(2, "selector", Ty::Msg(LABEL_SELECTOR)),
    f(3, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    f(4, "strategy", Ty::Msg(DEPLOYMENT_STRATEGY)),
    f(5, "minReadySeconds", Ty::Int),
    ptr(6, "revisionHistoryLimit", Ty::Int),
    f(7, "paused", Ty::Bool),
    ptr(9, "progressDeadlineSeconds", Ty::Int),
];

const DEPLOYMENT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(DEPLOYMENT_SPEC)),
];

const NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(&[list(1, "finalizers", Ty::Str)])),
];

const CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", STR_MAP),
    f(3, "binaryData", Ty::Map(&Ty::Bytes)),
    ptr(4, "immutable", Ty::Bool),
];

const SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::Map(&Ty::Bytes)),
    f(3, "type", Ty::Str),
    f(4, "stringData", STR_MAP),
    ptr(5, "immutable", Ty::Bool),
];

const SERVICE_ACCOUNT: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    list(2, "secrets", Ty::Msg(OBJECT_REFERENCE)),
    list(3, "imagePullSecrets", Ty::Msg(LOCAL_OBJECT_REFERENCE)),
    ptr(4, "automountServiceAccountToken", Ty::Bool),
];

const SERVICE_PORT: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(3, "port", Ty::Int),
    f(4, "targetPort", Ty::IntOrStr),
    f(5, "nodePort", Ty::Int),
    f(6, "appProtocol", Ty::Str),
];

const SERVICE_SPEC: &[Field] = &[
    list(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", STR_MAP),
    f(3, "clusterIP", Ty::Str),
    f(4, "type", Ty::Str),
    list(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(10, "externalName", Ty::Str),
];

const SERVICE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
];

const JOB_SPEC: &[Field] = &[
    ptr(1, "parallelism", Ty::Int),
    ptr(2, "completions", Ty::Int),
    ptr(3, "activeDeadlineSeconds", Ty::Int),
    f(4, "selector", Ty::Msg(LABEL_SELECTOR)),
    ptr(5, "manualSelector", Ty::Bool),
    f(6, "template", Ty::Msg(POD_TEMPLATE_SPEC)),
    ptr(7, "backoffLimit", Ty::Int),
    ptr(8, "ttlSecondsAfterFinished", Ty::Int),
    f(9, "completionMode", Ty::Str),
    ptr(10, "suspend", Ty::Bool),
];

const JOB: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
];

const JOB_TEMPLATE_SPEC: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(JOB_SPEC)),
];

const CRON_JOB_SPEC: &[Field] = &[
    f(1, "schedule", Ty::Str),
    ptr(2, "startingDeadlineSeconds", Ty::Int),
    f(3, "concurrencyPolicy", Ty::Str),
    ptr(4, "suspend", Ty::Bool),
    f(5, "jobTemplate", Ty::Msg(JOB_TEMPLATE_SPEC)),
    ptr(6, "successfulJobsHistoryLimit", Ty::Int),
    ptr(7, "failedJobsHistoryLimit", Ty::Int),
    f(8, "timeZone", Ty::Str),
];

const CRON_JOB: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(CRON_JOB_SPEC)),
];

const POLICY_RULE: &[Field] = &[
    list(1, "verbs", Ty::Str),
    list(2, "apiGroups", Ty::Str),
    list(3, "resources", Ty::Str),
    list(4, "resourceNames", Ty::Str),
    list(5, "nonResourceURLs", Ty::Str),
];

const ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    list(2, "rules", Ty::Msg(POLICY_RULE)),
];

const CLUSTER_ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    list(2, "rules", Ty::Msg(POLICY_RULE)),
    f(
        3,
        "aggregationRule",
        Ty::Msg(&[list(1, "clusterRoleSelectors", Ty::Msg(LABEL_SELECTOR))]),
    ),
];

const SUBJECT: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiGroup", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "namespace", Ty::Str),
];

const ROLE_REF: &[Field] = &[
    f(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];

const ROLE_BINDING: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    list(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

const PDB: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "minAvailable", Ty::IntOrStr),
            f(2, "selector", Ty::Msg(LABEL_SELECTOR)),
            f(3, "maxUnavailable", Ty::IntOrStr),
            f(4, "unhealthyPodEvictionPolicy", Ty::Str),
        ]),
    ),
];

const INGRESS_BACKEND: &[Field] = &[f(
    4,
    "service",
    Ty::Msg(&[
        f(1, "name", Ty::Str),
        f(
            2,
            "port",
            Ty::Msg(&[f(1, "name", Ty::Str), f(2, "number", Ty::Int)]),
        ),
    ]),
)];

const HTTP_INGRESS_PATH: &[Field] = &[
    f(1, "path", Ty::Str),
    f(2, "backend", Ty::Msg(INGRESS_BACKEND)),
    f(3, "pathType", Ty::Str),
];

const INGRESS_RULE: &[Field] = &[
    f(1, "host", Ty::Str),
    f(
        2,
        "ingressRuleValue",
        Ty::Inline(&[f(
            1,
            "http",
            Ty::Msg(&[list(1, "paths", Ty::Msg(HTTP_INGRESS_PATH))]),
        )]),
    ),
];

const INGRESS: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(1, "defaultBackend", Ty::Msg(INGRESS_BACKEND)),
            list(
                2,
                "tls",
                Ty::Msg(&[list(1, "hosts", Ty::Str), f(2, "secretName", Ty::Str)]),
            ),
            list(3, "rules", Ty::Msg(INGRESS_RULE)),
            f(4, "ingressClassName", Ty::Str),
        ]),
    ),
];

const METRIC_TARGET: &[Field] = &[
    f(1, "type", Ty::Str),
    f(2, "value", Ty::Quantity),
    f(3, "averageValue", Ty::Quantity),
    ptr(4, "averageUtilization", Ty::Int),
];

const HPA: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(
        2,
        "spec",
        Ty::Msg(&[
            f(
                1,
                "scaleTargetRef",
                Ty::Msg(&[
                    f(1, "kind", Ty::Str),
                    f(2, "name", Ty::Str),
                    f(3, "apiVersion", Ty::Str),
                ]),
            ),
            ptr(2, "minReplicas", Ty::Int),
            f(3, "maxReplicas", Ty::Int),
            list(
                4,
                "metrics",
                Ty::Msg(&[
                    f(1, "type", Ty::Str),
                    f(
                        4,
                        "resource",
                        Ty::Msg(&[
                            f(1, "name", Ty::Str),
                            f(2, "target", Ty::Msg(METRIC_TARGET)),
                        ]),
                    ),
                ]),
            ),
        ]),
    ),
];

/// The message table of a kind, if its protobuf form is understood.
pub(super) fn table(info: &KindInfo) -> Option<&'static [Field]> {
    Some(match (info.group, info.kind) {
        ("", "Namespace") => NAMESPACE,
        ("", "ConfigMap") => CONFIG_MAP,
        ("", "Secret") => SECRET,
        ("", "ServiceAccount") => SERVICE_ACCOUNT,
        ("", "Service") => SERVICE,
        ("apps", "Deployment") => DEPLOYMENT,
        ("batch", "Job") => JOB,
        ("batch", "CronJob") => CRON_JOB,
        ("rbac.authorization.k8s.io", "Role") => ROLE,
        ("rbac.authorization.k8s.io", "ClusterRole") => CLUSTER_ROLE,
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => ROLE_BINDING,
        ("policy", "PodDisruptionBudget") => PDB,
        ("networking.k8s.io", "Ingress") => INGRESS,
        ("autoscaling", "HorizontalPodAutoscaler") => HPA,
        _ => return None,
    })
}
