//! `Pod`: one or more containers sharing a network namespace, bound to a node.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    primitives::{
        IntOrString, Protocol, Quantity,
        validate::{self, Errors, FieldError},
    },
    resource::{ObjectMeta, Resource, Time},
};

/// A Pod: one or more containers that share a network namespace (one IP
/// address), volumes and a life, scheduled together onto one node, where keel-
/// agent runs them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Pod {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the pod should run: its containers, volumes and how it is scheduled
    /// and restarted.
    #[serde(default)]
    pub spec: PodSpec,
    /// What the pod's node last reported: phase, conditions, IP addresses and
    /// each container's state. Written by keel-agent; a user's write of it is
    /// ignored outside the status subresource.
    #[serde(default)]
    pub status: PodStatus,
}

crate::preserved_fields!(
    /// Pod `spec` fields keel keeps without acting on them. A pod whose
    /// `resourceClaims` claim devices is kept too, and its agent refuses to
    /// start its containers without them (as for volume sources keel
    /// lacks, [`VolumeSourceFields`]).
    PodSpecFields,
    "a pod spec",
    [
        "schedulerName",
        "tolerations",
        "affinity",
        "topologySpreadConstraints",
        "priority",
        "priorityClassName",
        "preemptionPolicy",
        "automountServiceAccountToken",
        "activeDeadlineSeconds",
        "runtimeClassName",
        "overhead",
        "readinessGates",
        "schedulingGates",
        "shareProcessNamespace",
        "setHostnameAsFQDN",
        "os",
        "hostUsers",
        // Pod-level resources (alpha in Kubernetes 1.32, off by default).
        "resources",
        // Dynamic resource allocation: keel allocates no devices, so its
        // agent does not start a pod that claims some (see
        // `PodSpec::resource_claims_field`).
        "resourceClaims",
    ]
);

crate::preserved_fields!(
    /// Container fields keel keeps without acting on them (for containers
    /// and init containers).
    ContainerFields,
    "a container",
    [
        "terminationMessagePath",
        "terminationMessagePolicy",
        "stdin",
        "stdinOnce",
        "tty",
        "lifecycle",
        "resizePolicy",
        // Block devices from a persistentVolumeClaim, whose volume keel's
        // agent refuses.
        "volumeDevices",
    ]
);

crate::preserved_fields!(
    /// Probe fields keel keeps without acting on them.
    ProbeFields,
    "a probe",
    ["terminationGracePeriodSeconds"]
);

crate::preserved_fields!(
    /// Pod `securityContext` fields keel keeps without acting on them.
    PodSecurityContextFields,
    "a pod's securityContext",
    [
        "fsGroup",
        "fsGroupChangePolicy",
        "supplementalGroups",
        "supplementalGroupsPolicy",
        "seLinuxOptions",
        "seLinuxChangePolicy",
        "sysctls",
        "windowsOptions",
        "appArmorProfile",
    ]
);

crate::preserved_fields!(
    /// Container `securityContext` fields keel keeps without acting on them.
    SecurityContextFields,
    "a container's securityContext",
    ["seLinuxOptions", "windowsOptions", "procMount", "appArmorProfile"]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// Containers run one after another, each to completion, before the main
    /// containers start (or kept running beside them, for those with
    /// `restartPolicy: Always`: sidecars).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// The pod's main containers, started together once the init containers are
    /// done. At least one; their names are unique within the pod.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// When the node restarts a container that exited: `Always` (the default),
    /// `OnFailure` (only after a non-zero exit) or `Never`.
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    /// The node the pod runs on: set by the user, or by the scheduler.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// Labels a node must have for the scheduler to put the pod there.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Seconds between the stop signal and the kill when the pod is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_grace_period_seconds: Option<i64>,
    /// Volumes the pod's containers can mount, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// Security settings for every container of the pod (a container's own
    /// `securityContext` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    /// The pod's hostname (the pod's name when unset).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// With `hostname`, the pod's FQDN is
    /// `hostname.subdomain.NS.svc.<cluster domain>` (answered by cluster DNS
    /// when a headless Service of that name selects the pod).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subdomain: String,
    /// How the pod's `/etc/resolv.conf` is made (ClusterFirst when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_policy: Option<DnsPolicy>,
    /// Nameservers, search domains and resolver options added to what
    /// `dnsPolicy` gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_config: Option<PodDnsConfig>,
    /// Extra `/etc/hosts` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_aliases: Vec<HostAlias>,
    /// Whether containers get the environment variables of the Services in
    /// their namespace (`WEB_SERVICE_HOST`, `WEB_PORT_80_TCP…`); `true` when
    /// unset. Those of the `default/kubernetes` Service are set either way,
    /// as the kubelet does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_service_links: Option<bool>,
    /// The pod's service account (`default` when unset); shown to the
    /// pod through `fieldRef: spec.serviceAccountName`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,
    /// Deprecated alias of `serviceAccountName`, kept as sent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account: String,
    /// Secrets (`kubernetes.io/dockerconfigjson` or `kubernetes.io/dockercfg`)
    /// in the pod's namespace giving registry credentials for its images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// The pod's containers run in the node's network namespace (and see
    /// the node's hostname): no sandbox, no CNI, the pod IP is the node's.
    /// A node-level privilege (Pod Security "baseline" forbids it): only
    /// nodes started with `--allow-privileged` run such pods.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub host_network: bool,
    /// The pod's containers run in the node's PID namespace (they see
    /// every process of the node). A node-level privilege, like
    /// `hostNetwork`: only nodes started with `--allow-privileged` run it.
    #[serde(
        default,
        rename = "hostPID",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub host_pid: bool,
    /// The pod's containers run in the node's IPC namespace (System V IPC,
    /// POSIX message queues) and share its `/dev/shm`. Same privilege.
    #[serde(
        default,
        rename = "hostIPC",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub host_ipc: bool,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: PodSpecFields,
}

impl PodSpec {
    /// `spec.resourceClaims` when the pod claims devices through dynamic
    /// resource allocation, which keel does not allocate.
    pub fn resource_claims_field(&self) -> Option<&'static str> {
        self.preserved
            .get("resourceClaims")
            .filter(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            .map(|_| "spec.resourceClaims")
    }

    /// The ports the pod holds on its node: every container port with a
    /// `hostPort`, and on a hostNetwork pod every container port (the
    /// container binds it on the node itself; Kubernetes defaults
    /// `hostPort` to `containerPort` there). Ports out of range are left
    /// out (validation refuses them).
    pub fn host_ports(&self) -> Vec<HostPort> {
        let mut out: Vec<HostPort> = self
            .containers
            .iter()
            .flat_map(|c| &c.ports)
            .filter_map(|p| {
                let port = match p.host_port {
                    Some(h) => h,
                    None if self.host_network => p.container_port,
                    None => return None,
                };
                Some(HostPort {
                    protocol: p.protocol,
                    ip: if p.host_ip == "0.0.0.0" {
                        String::new()
                    } else {
                        p.host_ip.clone()
                    },
                    port: u16::try_from(port).ok().filter(|p| *p != 0)?,
                })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `serviceAccountName`, else the deprecated `serviceAccount`, else `default`.
    pub fn service_account(&self) -> &str {
        if !self.service_account_name.is_empty() {
            &self.service_account_name
        } else if !self.service_account.is_empty() {
            &self.service_account
        } else {
            "default"
        }
    }

    /// `enableServiceLinks`, true when unset.
    pub fn service_links(&self) -> bool {
        self.enable_service_links.unwrap_or(true)
    }

    /// Every ConfigMap and Secret (in the pod's namespace) the pod uses:
    /// env, envFrom, volumes (projected sources too) and imagePullSecrets.
    /// What the agent fetches for a pod, and what a node may read.
    pub fn references(&self) -> BTreeSet<(RefKind, String)> {
        let mut out = BTreeSet::new();
        let mut add = |kind, name: &str| {
            out.insert((kind, name.to_string()));
        };
        for c in self.containers.iter().chain(&self.init_containers) {
            for e in &c.env_from {
                if let Some(r) = &e.config_map_ref {
                    add(RefKind::ConfigMap, &r.name);
                }
                if let Some(r) = &e.secret_ref {
                    add(RefKind::Secret, &r.name);
                }
            }
            for from in c.env.iter().filter_map(|e| e.value_from.as_ref()) {
                if let Some(r) = &from.config_map_key_ref {
                    add(RefKind::ConfigMap, &r.name);
                }
                if let Some(r) = &from.secret_key_ref {
                    add(RefKind::Secret, &r.name);
                }
            }
        }
        for v in &self.volumes {
            if let Some(c) = &v.config_map {
                add(RefKind::ConfigMap, &c.name);
            }
            if let Some(s) = &v.secret {
                add(RefKind::Secret, &s.secret_name);
            }
            for s in v.projected.iter().flat_map(|p| &p.sources) {
                if let Some(c) = &s.config_map {
                    add(RefKind::ConfigMap, &c.name);
                }
                if let Some(c) = &s.secret {
                    add(RefKind::Secret, &c.name);
                }
            }
        }
        for s in &self.image_pull_secrets {
            add(RefKind::Secret, &s.name);
        }
        out
    }
}

/// The kinds a pod references by name ([`PodSpec::references`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefKind {
    ConfigMap,
    Secret,
}

impl RefKind {
    /// The API resource (`configmaps`, `secrets`).
    pub fn resource(self) -> &'static str {
        match self {
            RefKind::ConfigMap => "configmaps",
            RefKind::Secret => "secrets",
        }
    }
}

/// A reference to an object of a known kind in the pod's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalObjectReference {
    #[serde(default)]
    pub name: String,
}

/// Kubernetes' `dnsPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DnsPolicy {
    /// The cluster DNS first, then the node's search domains.
    #[default]
    ClusterFirst,
    /// ClusterFirst for hostNetwork pods too (on a hostNetwork pod
    /// `ClusterFirst` falls back to `Default`, as the kubelet does).
    ClusterFirstWithHostNet,
    /// The node's own resolv.conf.
    Default,
    /// Only what `dnsConfig` says.
    None,
}

/// Kubernetes' `dnsConfig`: merged into what the policy gives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDnsConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub searches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PodDnsConfigOption>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodDnsConfigOption {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// One `/etc/hosts` line: `ip hostnames…`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostAlias {
    #[serde(default)]
    pub ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
}

/// Kubernetes' limits on `dnsConfig` (validation.go: MaxDNSNameservers,
/// MaxDNSSearchPaths, MaxDNSSearchListChars).
pub const MAX_DNS_NAMESERVERS: usize = 3;
pub const MAX_DNS_SEARCHES: usize = 32;
pub const MAX_DNS_SEARCH_CHARS: usize = 2048;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

/// One container of a pod: an image and how to run it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The container's name, a DNS label unique within the pod.
    pub name: String,
    /// The container's image reference (`nginx:1.27`,
    /// `registry.example/app@sha256:…`), pulled by the pod's node as
    /// `imagePullPolicy` says.
    #[serde(default)]
    pub image: String,
    /// When the node pulls the image: `Always`, `IfNotPresent` or `Never`.
    /// Unset: `Always` for an untagged or `:latest` image, `IfNotPresent`
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<PullPolicy>,
    /// The entrypoint, replacing the image's `ENTRYPOINT`; `$(NAME)` expands to
    /// the container's environment variable NAME.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// Arguments to the entrypoint, replacing the image's `CMD`; `$(NAME)`
    /// expands as in `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// The working directory (the image's when unset).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// Sources of environment variables taken whole (every key of a ConfigMap
    /// or Secret).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env_from: Vec<EnvFromSource>,
    /// Environment variables set in the container; these win over `envFrom`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Ports the container listens on. Informational unless they carry a
    /// `hostPort` or are named for a Service's `targetPort` or a probe.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// CPU and memory the container asks for (`requests`, used by the
    /// scheduler) and may use at most (`limits`, enforced through cgroups).
    #[serde(default, skip_serializing_if = "ResourceRequirements::is_empty")]
    pub resources: ResourceRequirements,
    /// Restarts the container when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
    /// Takes the pod out of its Services' endpoints while it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// Holds the other probes back until it succeeds once; the container is
    /// restarted if it never does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_probe: Option<Probe>,
    /// Where the pod's volumes appear in this container's filesystem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
    /// Security settings of this container (user, capabilities, privileges);
    /// they win over the pod's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<SecurityContext>,
    /// `Always` on an init container makes it a sidecar (Kubernetes 1.29+):
    /// started in order with the init containers, kept running (restarted
    /// whenever it exits), stopped after the main containers. Not allowed
    /// on other containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<ContainerRestartPolicy>,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: ContainerFields,
}

/// A container's own `restartPolicy` (only `Always`, for sidecars).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ContainerRestartPolicy {
    Always,
}

impl Container {
    /// A sidecar: an init container with `restartPolicy: Always`.
    pub fn is_sidecar(&self) -> bool {
        self.restart_policy == Some(ContainerRestartPolicy::Always)
    }

    /// The pull policy Kubernetes defaults to: Always for `:latest` or an
    /// untagged image, IfNotPresent otherwise.
    pub fn effective_pull_policy(&self) -> PullPolicy {
        self.image_pull_policy.unwrap_or_else(|| {
            let name = self.image.rsplit('/').next().unwrap_or(&self.image);
            if self.image.contains('@') || name.contains(':') && !name.ends_with(":latest") {
                PullPolicy::IfNotPresent
            } else {
                PullPolicy::Always
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVar {
    pub name: String,
    /// May refer to earlier variables as `$(NAME)`; `$$` is a literal `$`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<EnvVarSource>,
}

/// Where an environment variable's value comes from (exactly one source).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvVarSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<ObjectFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<KeySelector>,
}

/// The downward API paths `fieldRef` takes (Kubernetes' `validEnvDownwardAPIFieldPathExpressions`,
/// plus `metadata.labels['k']` and `metadata.annotations['k']`).
pub const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectFieldSelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    pub field_path: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceFieldSelector {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_name: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisor: Option<Quantity>,
}

/// A key of a ConfigMap or Secret in the pod's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySelector {
    #[serde(default)]
    pub name: String,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// Every key of a ConfigMap or Secret as a variable, with an optional prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvFromSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<OptionalReference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<OptionalReference>,
}

/// A ConfigMap or Secret by name, which may be allowed to be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OptionalReference {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerPort {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub container_port: i64,
    #[serde(default)]
    pub protocol: Protocol,
    /// The port on the node's IP that reaches this container port (keel's
    /// load balancer forwards it; no iptables). On a hostNetwork pod it
    /// must equal `containerPort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<i64>,
    /// The node address `hostPort` is bound to: empty, `0.0.0.0` or the
    /// node's own IP (keel's nodes have one address; the agent refuses any
    /// other).
    #[serde(default, rename = "hostIP", skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
}

/// One port a pod holds on its node: what two pods on one node cannot
/// share (the scheduler's NodePorts filter).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    pub protocol: Protocol,
    /// Empty for every address (`0.0.0.0` is normalised to empty).
    pub ip: String,
    pub port: u16,
}

impl HostPort {
    /// Whether the two cannot both be held on one node: the same port and
    /// protocol, on the same address or with either on every address
    /// (Kubernetes' `HostPortInfo.CheckConflict`).
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.protocol == other.protocol
            && self.port == other.port
            && (self.ip.is_empty() || other.ip.is_empty() || self.ip == other.ip)
    }
}

crate::preserved_fields!(
    /// A container's `resources` fields keel keeps: `claims` name the pod's
    /// `resourceClaims` (dynamic resource allocation), which keel's agent
    /// refuses.
    ResourceRequirementsFields,
    "a container's resources",
    ["claims"]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, Quantity>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, Quantity>,
    #[serde(flatten)]
    pub preserved: ResourceRequirementsFields,
}

impl ResourceRequirements {
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty() && self.limits.is_empty() && self.preserved.is_empty()
    }

    /// The request for a resource; as in Kubernetes, a limit without a request
    /// also serves as the request.
    pub fn request(&self, resource: &str) -> Option<&Quantity> {
        self.requests
            .get(resource)
            .or_else(|| self.limits.get(resource))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Probe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<ExecAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGetAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocketAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_threshold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_threshold: Option<i64>,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: ProbeFields,
}

impl Probe {
    /// Kubernetes defaults: no initial delay, every 10 s, 1 s timeout, one
    /// success, three failures.
    pub fn initial_delay(&self) -> i64 {
        self.initial_delay_seconds.unwrap_or(0)
    }
    pub fn period(&self) -> i64 {
        self.period_seconds.unwrap_or(10)
    }
    pub fn timeout(&self) -> i64 {
        self.timeout_seconds.unwrap_or(1)
    }
    pub fn success_threshold(&self) -> i64 {
        self.success_threshold.unwrap_or(1)
    }
    pub fn failure_threshold(&self) -> i64 {
        self.failure_threshold.unwrap_or(3)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecAction {
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpGetAction {
    #[serde(default)]
    pub path: String,
    pub port: IntOrString,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scheme: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_headers: Vec<HttpHeader>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// A gRPC health check (`grpc.health.v1.Health/Check`) on the pod's IP:
/// SERVING is success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcAction {
    /// A port number (not a name, as in Kubernetes).
    pub port: i64,
    /// The service asked about (`""`, the server as a whole, when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcpSocketAction {
    pub port: IntOrString,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

crate::preserved_fields!(
    /// Volume sources of Kubernetes' schema keel has no driver for. A pod
    /// with one is accepted and kept (so its manifest applies and
    /// round-trips, with a warning naming it), and its node's agent refuses
    /// to start its containers, naming the volume, instead of running them
    /// without their storage.
    VolumeSourceFields,
    "a volume",
    [
        "persistentVolumeClaim",
        "ephemeral",
        "csi",
        "image",
        "nfs",
        "iscsi",
        "fc",
        "rbd",
        "cephfs",
        "glusterfs",
        "gitRepo",
        "flexVolume",
        "cinder",
        "flocker",
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "azureDisk",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ]
);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_dir: Option<EmptyDirVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<HostPathVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ConfigMapVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretVolumeSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projected: Option<ProjectedVolumeSource>,
    #[serde(
        default,
        rename = "downwardAPI",
        skip_serializing_if = "Option::is_none"
    )]
    pub downward_api: Option<DownwardApiVolumeSource>,
    /// Sources keel has no driver for (see [`VolumeSourceFields`]).
    #[serde(flatten)]
    pub preserved: VolumeSourceFields,
}

/// Files holding the pod's own fields (`downwardAPI` volume).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownwardApiVolumeSource {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<DownwardApiVolumeFile>,
    /// File mode (0644 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
}

/// The `downwardAPI` source of a projected volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownwardApiProjection {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<DownwardApiVolumeFile>,
}

/// One file of the downward API: a pod field or a container's resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownwardApiVolumeFile {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<ObjectFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_field_ref: Option<ResourceFieldSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
}

/// The pod fields a downwardAPI volume file takes (Kubernetes'
/// `validVolumeDownwardAPIFieldPathExpressions`, plus
/// `metadata.labels['k']` and `metadata.annotations['k']`).
pub const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.labels",
    "metadata.annotations",
    "metadata.uid",
];

impl Volume {
    /// How many volume types the volume names (exactly one is valid).
    fn type_count(&self) -> usize {
        usize::from(self.empty_dir.is_some())
            + usize::from(self.host_path.is_some())
            + usize::from(self.config_map.is_some())
            + usize::from(self.secret.is_some())
            + usize::from(self.projected.is_some())
            + usize::from(self.downward_api.is_some())
            + self.preserved.0.len()
    }

    /// The name of its source keel has no driver for, if that is its source.
    pub fn unsupported_source(&self) -> Option<&str> {
        self.preserved.0.keys().next().map(String::as_str)
    }
}

/// The files of a ConfigMap: every key, or only `items`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapVolumeSource {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    /// File mode (0644 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// The files of a Secret: every key, or only `items`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretVolumeSource {
    #[serde(default)]
    pub secret_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// One key written to a relative path, with its own mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyToPath {
    pub key: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<i32>,
}

/// Several ConfigMaps and Secrets in one directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectedVolumeSource {
    #[serde(default)]
    pub sources: Vec<VolumeProjection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_mode: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeProjection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<ProjectionSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<ProjectionSource>,
    #[serde(
        default,
        rename = "downwardAPI",
        skip_serializing_if = "Option::is_none"
    )]
    pub downward_api: Option<DownwardApiProjection>,
}

/// A ConfigMap or Secret projected into a projected volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectionSource {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<KeyToPath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// A path a volume item is written to: relative, no `..` element, and
/// not starting with `..` (Kubernetes' `validateLocalNonReservedPath`).
pub fn validate_item_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("must not be empty".into());
    }
    if p.starts_with('/') {
        return Err(format!("{p:?} must be a relative path"));
    }
    if p.split('/').any(|e| e == "..") {
        return Err(format!("{p:?} must not contain '..'"));
    }
    if p.starts_with("..") {
        return Err(format!("{p:?} must not start with '..'"));
    }
    Ok(())
}

fn validate_mode(m: Option<i32>, field: String, errs: &mut Errors) {
    if let Some(m) = m
        && !(0..=0o777).contains(&m)
    {
        errs.add(
            field,
            format!("{m} must be a file mode between 0 and 0777 (511)"),
        );
    }
}

fn validate_items(items: &[KeyToPath], at: &str, errs: &mut Errors) {
    for (i, it) in items.iter().enumerate() {
        errs.check(
            format!("{at}.items[{i}].key"),
            crate::kinds::config_map::data_key(&it.key),
        );
        errs.check(
            format!("{at}.items[{i}].path"),
            validate_item_path(&it.path),
        );
        validate_mode(it.mode, format!("{at}.items[{i}].mode"), errs);
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmptyDirVolumeSource {
    /// "" (node disk) or "Memory" (tmpfs).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub medium: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_limit: Option<Quantity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostPathVolumeSource {
    pub path: String,
    /// "", DirectoryOrCreate, Directory, FileOrCreate, File.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_path: String,
    /// Like `subPath`, with `$(VAR)` expanded from the container's
    /// environment (the kubelet's `subPathExpr`); exclusive with `subPath`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sub_path_expr: String,
    /// How mounts made under the volume travel between the node and the
    /// container (`None` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_propagation: Option<MountPropagation>,
}

/// Kubernetes' `mountPropagation`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MountPropagation {
    /// Private both ways (`rprivate`).
    #[default]
    None,
    /// Mounts the node makes under the volume show in the container, not
    /// the other way (`rslave`).
    HostToContainer,
    /// Both ways (`rshared`); privileged containers only.
    Bidirectional,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: PodSecurityContextFields,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_user: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_group: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as_non_root: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_privilege_escalation: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capabilities: Option<Capabilities>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp_profile: Option<SeccompProfile>,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: SecurityContextFields,
}

/// `securityContext.seccompProfile`: `RuntimeDefault`, `Unconfined` or
/// `Localhost` (with `localhostProfile`, a path relative to the node's
/// profile directory).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompProfile {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub localhost_profile: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Capabilities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<PodPhase>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, rename = "hostIP", skip_serializing_if = "String::is_empty")]
    pub host_ip: String,
    #[serde(default, rename = "podIP", skip_serializing_if = "String::is_empty")]
    pub pod_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_container_statuses: Vec<ContainerStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_statuses: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PodPhase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Unknown,
}

impl PodPhase {
    pub fn as_str(&self) -> &'static str {
        match self {
            PodPhase::Pending => "Pending",
            PodPhase::Running => "Running",
            PodPhase::Succeeded => "Succeeded",
            PodPhase::Failed => "Failed",
            PodPhase::Unknown => "Unknown",
        }
    }
}

/// PodScheduled, Initialized, ContainersReady, Ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True", "False" or "Unknown".
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerStatus {
    pub name: String,
    #[serde(default)]
    pub image: String,
    #[serde(default, rename = "imageID", skip_serializing_if = "String::is_empty")]
    pub image_id: String,
    #[serde(
        default,
        rename = "containerID",
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
    #[serde(default)]
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<bool>,
    #[serde(default)]
    pub restart_count: u32,
    #[serde(default)]
    pub state: ContainerState,
    #[serde(default, skip_serializing_if = "ContainerState::is_empty")]
    pub last_state: ContainerState,
}

/// Exactly one of waiting, running, terminated is set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<ContainerStateWaiting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<ContainerStateRunning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminated: Option<ContainerStateTerminated>,
}

impl ContainerState {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_none() && self.running.is_none() && self.terminated.is_none()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerStateWaiting {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerStateRunning {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerStateTerminated {
    pub exit_code: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
}

impl Pod {
    /// Whether the pod's Ready condition is True.
    pub fn is_ready(&self) -> bool {
        self.condition("Ready").is_some_and(|c| c.status == "True")
    }

    pub fn condition(&self, type_: &str) -> Option<&PodCondition> {
        self.status.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Sets a condition, keeping lastTransitionTime when the status is unchanged.
    pub fn set_condition(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        set_condition(&mut self.status.conditions, type_, status, reason, message);
    }

    /// Pending/Running pods (not Succeeded or Failed).
    pub fn is_active(&self) -> bool {
        !matches!(
            self.status.phase,
            Some(PodPhase::Succeeded | PodPhase::Failed)
        )
    }

    /// Sum of a resource's requests over the app containers (in milli units).
    pub fn request_milli(&self, resource: &str) -> u64 {
        self.spec
            .containers
            .iter()
            .filter_map(|c| c.resources.request(resource))
            .map(Quantity::milli)
            .sum()
    }

    /// Resolves a service targetPort to a number for this pod: a number as
    /// is, a name through the containers' named ports.
    pub fn resolve_port(&self, port: &IntOrString, protocol: Protocol) -> Option<u16> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).ok(),
            IntOrString::String(name) => self
                .spec
                .containers
                .iter()
                .flat_map(|c| &c.ports)
                .find(|p| &p.name == name && p.protocol == protocol)
                .and_then(|p| u16::try_from(p.container_port).ok()),
        }
    }
}

pub(crate) fn set_condition(
    conditions: &mut Vec<PodCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(Time::now());
            }
            c.status = status.to_string();
            c.reason = reason.to_string();
            c.message = message.to_string();
        }
        None => conditions.push(PodCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            last_transition_time: Some(Time::now()),
        }),
    }
}

/// Checks the files of a downwardAPI volume or projection (Kubernetes'
/// `validateDownwardAPIVolumeFile`): a relative path without `..`, exactly
/// one of fieldRef (a volume field path) or resourceFieldRef (with its
/// containerName), a mode 0-0777.
fn validate_downward_items(items: &[DownwardApiVolumeFile], at: &str, errs: &mut Errors) {
    let mut paths = BTreeSet::new();
    for (i, it) in items.iter().enumerate() {
        let at = format!("{at}.items[{i}]");
        errs.check(format!("{at}.path"), validate_item_path(&it.path));
        if !paths.insert(it.path.as_str()) {
            errs.add(
                format!("{at}.path"),
                format!("duplicate path {:?}", it.path),
            );
        }
        validate_mode(it.mode, format!("{at}.mode"), errs);
        match (&it.field_ref, &it.resource_field_ref) {
            (Some(f), None) => {
                let p = f.field_path.as_str();
                let subscript = ["metadata.labels['", "metadata.annotations['"]
                    .iter()
                    .any(|pre| p.starts_with(pre) && p.ends_with("']") && p.len() > pre.len() + 2);
                if !VOLUME_FIELD_PATHS.contains(&p) && !subscript {
                    errs.add(
                        format!("{at}.fieldRef.fieldPath"),
                        format!(
                            "{p:?} is not supported (use {}, metadata.labels['KEY'] or metadata.annotations['KEY'])",
                            VOLUME_FIELD_PATHS.join(", ")
                        ),
                    );
                }
                if !matches!(f.api_version.as_str(), "" | "v1") {
                    errs.add(
                        format!("{at}.fieldRef.apiVersion"),
                        format!("{:?} is not supported (use v1)", f.api_version),
                    );
                }
            }
            (None, Some(r)) => {
                if r.container_name.is_empty() {
                    errs.add(
                        format!("{at}.resourceFieldRef.containerName"),
                        "required in a volume",
                    );
                }
                if !matches!(
                    r.resource.as_str(),
                    "limits.cpu"
                        | "limits.memory"
                        | "limits.ephemeral-storage"
                        | "requests.cpu"
                        | "requests.memory"
                        | "requests.ephemeral-storage"
                ) {
                    errs.add(
                        format!("{at}.resourceFieldRef.resource"),
                        format!("{:?} is not a supported resource", r.resource),
                    );
                }
            }
            _ => errs.add(
                &at,
                "must specify exactly one of fieldRef or resourceFieldRef",
            ),
        }
    }
}

/// Checks one `env[].valueFrom` (`at` is the variable's path).
fn validate_env_source(from: &EnvVarSource, value: &str, at: &str, errs: &mut Errors) {
    if !value.is_empty() {
        errs.add(
            format!("{at}.valueFrom"),
            "may not be specified when `value` is not empty",
        );
    }
    let n = usize::from(from.field_ref.is_some())
        + usize::from(from.resource_field_ref.is_some())
        + usize::from(from.config_map_key_ref.is_some())
        + usize::from(from.secret_key_ref.is_some());
    if n != 1 {
        errs.add(
            format!("{at}.valueFrom"),
            "must specify exactly one of fieldRef, resourceFieldRef, configMapKeyRef or secretKeyRef",
        );
    }
    if let Some(f) = &from.field_ref {
        let p = f.field_path.as_str();
        let subscript = ["metadata.labels['", "metadata.annotations['"]
            .iter()
            .any(|pre| p.starts_with(pre) && p.ends_with("']") && p.len() > pre.len() + 2);
        if !ENV_FIELD_PATHS.contains(&p) && !subscript {
            errs.add(
                format!("{at}.valueFrom.fieldRef.fieldPath"),
                format!(
                    "{p:?} is not supported (use {}, metadata.labels['KEY'] or metadata.annotations['KEY'])",
                    ENV_FIELD_PATHS.join(", ")
                ),
            );
        }
        if !matches!(f.api_version.as_str(), "" | "v1") {
            errs.add(
                format!("{at}.valueFrom.fieldRef.apiVersion"),
                format!("{:?} is not supported (use v1)", f.api_version),
            );
        }
    }
    if let Some(r) = &from.resource_field_ref
        && !matches!(
            r.resource.as_str(),
            "limits.cpu"
                | "limits.memory"
                | "limits.ephemeral-storage"
                | "requests.cpu"
                | "requests.memory"
                | "requests.ephemeral-storage"
        )
    {
        errs.add(
            format!("{at}.valueFrom.resourceFieldRef.resource"),
            format!("{:?} is not a supported resource", r.resource),
        );
    }
    for (field, r) in [
        ("configMapKeyRef", &from.config_map_key_ref),
        ("secretKeyRef", &from.secret_key_ref),
    ] {
        let Some(r) = r else { continue };
        errs.check(
            format!("{at}.valueFrom.{field}.name"),
            validate::dns1123_subdomain(&r.name),
        );
        errs.check(
            format!("{at}.valueFrom.{field}.key"),
            crate::kinds::config_map::data_key(&r.key),
        );
    }
}

/// Checks a pod spec; `at` is the path prefix (`spec` or `spec.template.spec`).
pub fn validate_spec(spec: &PodSpec, at: &str, errs: &mut Errors) {
    if spec.containers.is_empty() {
        errs.add(
            format!("{at}.containers"),
            "at least one container is required",
        );
    }
    let mut names = std::collections::BTreeSet::new();
    let volumes: std::collections::BTreeSet<&str> =
        spec.volumes.iter().map(|v| v.name.as_str()).collect();
    let all = spec
        .init_containers
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("{at}.initContainers[{i}]"), c, true))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("{at}.containers[{i}]"), c, false)),
        );
    let mut port_names = std::collections::BTreeSet::new();
    for (path, c, init) in all {
        errs.check(format!("{path}.name"), validate::dns1123_label(&c.name));
        if !names.insert(c.name.as_str()) {
            errs.add(
                format!("{path}.name"),
                format!("duplicate container name {:?}", c.name),
            );
        }
        if c.image.trim().is_empty() {
            errs.add(format!("{path}.image"), "required");
        } else if c.image.chars().any(char::is_whitespace) {
            errs.add(
                format!("{path}.image"),
                format!("{:?} must not contain whitespace", c.image),
            );
        }
        if !init && c.restart_policy.is_some() {
            errs.add(
                format!("{path}.restartPolicy"),
                "may not be set for non-init containers",
            );
        }
        for (j, e) in c.env.iter().enumerate() {
            errs.check(
                format!("{path}.env[{j}].name"),
                validate::env_var_name(&e.name),
            );
            if let Some(from) = &e.value_from {
                validate_env_source(from, &e.value, &format!("{path}.env[{j}]"), errs);
            }
        }
        for (j, e) in c.env_from.iter().enumerate() {
            let at = format!("{path}.envFrom[{j}]");
            if !e.prefix.is_empty() {
                errs.check(format!("{at}.prefix"), validate::env_var_name(&e.prefix));
            }
            match (&e.config_map_ref, &e.secret_ref) {
                (Some(r), None) => errs.check(
                    format!("{at}.configMapRef.name"),
                    validate::dns1123_subdomain(&r.name),
                ),
                (None, Some(r)) => errs.check(
                    format!("{at}.secretRef.name"),
                    validate::dns1123_subdomain(&r.name),
                ),
                _ => errs.add(&at, "must specify exactly one of configMapRef or secretRef"),
            }
        }
        for (j, p) in c.ports.iter().enumerate() {
            errs.check(
                format!("{path}.ports[{j}].containerPort"),
                validate::port(p.container_port),
            );
            if let Some(h) = p.host_port {
                errs.check(format!("{path}.ports[{j}].hostPort"), validate::port(h));
                if spec.host_network && h != p.container_port {
                    errs.add(
                        format!("{path}.ports[{j}].hostPort"),
                        format!(
                            "{h} must match containerPort {} when hostNetwork is true",
                            p.container_port
                        ),
                    );
                }
            }
            if !p.host_ip.is_empty() && p.host_ip.parse::<std::net::IpAddr>().is_err() {
                errs.add(
                    format!("{path}.ports[{j}].hostIP"),
                    format!("{:?} is not an IP address", p.host_ip),
                );
            }
            if !p.name.is_empty() {
                errs.check(
                    format!("{path}.ports[{j}].name"),
                    validate::iana_svc_name(&p.name),
                );
                if !port_names.insert(p.name.clone()) {
                    errs.add(
                        format!("{path}.ports[{j}].name"),
                        format!("duplicate port name {:?}", p.name),
                    );
                }
            }
        }
        for (kind, q) in c.resources.requests.iter().chain(&c.resources.limits) {
            if !matches!(kind.as_str(), "cpu" | "memory" | "ephemeral-storage") {
                errs.add(
                    format!("{path}.resources"),
                    format!("unknown resource {kind:?} (use cpu, memory, ephemeral-storage)"),
                );
            }
            let _ = q;
        }
        for kind in ["cpu", "memory"] {
            if let (Some(req), Some(lim)) =
                (c.resources.requests.get(kind), c.resources.limits.get(kind))
                && req.milli() > lim.milli()
            {
                errs.add(
                    format!("{path}.resources.requests.{kind}"),
                    format!("request {req} must be less than or equal to the limit {lim}"),
                );
            }
        }
        let probes = [
            ("livenessProbe", &c.liveness_probe),
            ("readinessProbe", &c.readiness_probe),
            ("startupProbe", &c.startup_probe),
        ];
        for (name, probe) in probes {
            let Some(p) = probe else { continue };
            let ppath = format!("{path}.{name}");
            // Sidecars have probes; run-to-completion init containers not.
            if init && !c.is_sidecar() {
                errs.add(&ppath, "init containers may not have probes");
            }
            validate_probe(p, &ppath, errs);
            if name != "livenessProbe" && name != "startupProbe" {
                continue;
            }
            if p.success_threshold() != 1 {
                errs.add(
                    format!("{ppath}.successThreshold"),
                    "must be 1 for liveness and startup probes",
                );
            }
        }
        for (j, m) in c.volume_mounts.iter().enumerate() {
            if !volumes.contains(m.name.as_str()) {
                errs.add(
                    format!("{path}.volumeMounts[{j}].name"),
                    format!("no volume named {:?} in {at}.volumes", m.name),
                );
            }
            if !m.mount_path.starts_with('/') {
                errs.add(
                    format!("{path}.volumeMounts[{j}].mountPath"),
                    format!("{:?} must be an absolute path", m.mount_path),
                );
            }
            if m.sub_path.starts_with('/') || m.sub_path.split('/').any(|p| p == "..") {
                errs.add(
                    format!("{path}.volumeMounts[{j}].subPath"),
                    format!("{:?} must be a relative path without '..'", m.sub_path),
                );
            }
            // Kubernetes' validateVolumeMounts: one or the other; the
            // expression is a relative path without '..' before expansion
            // too (after it, the kubelet checks again).
            let expr = &m.sub_path_expr;
            if !m.sub_path.is_empty() && !expr.is_empty() {
                errs.add(
                    format!("{path}.volumeMounts[{j}].subPathExpr"),
                    "subPathExpr and subPath are mutually exclusive",
                );
            } else if expr.starts_with('/') || expr.split('/').any(|p| p == "..") {
                errs.add(
                    format!("{path}.volumeMounts[{j}].subPathExpr"),
                    format!("{expr:?} must be a relative path without '..'"),
                );
            }
            // validateMountPropagation: the node's mounts are the node's,
            // changed from a container only when it is privileged.
            let privileged = c
                .security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false);
            if m.mount_propagation == Some(MountPropagation::Bidirectional) && !privileged {
                errs.add(
                    format!("{path}.volumeMounts[{j}].mountPropagation"),
                    "Bidirectional mount propagation is available only to privileged containers",
                );
            }
        }
        if let Some(p) = c
            .security_context
            .as_ref()
            .and_then(|s| s.seccomp_profile.as_ref())
        {
            validate_seccomp_profile(p, &format!("{path}.securityContext.seccompProfile"), errs);
        }
    }
    if let Some(p) = spec
        .security_context
        .as_ref()
        .and_then(|s| s.seccomp_profile.as_ref())
    {
        validate_seccomp_profile(p, &format!("{at}.securityContext.seccompProfile"), errs);
    }
    let mut vnames = std::collections::BTreeSet::new();
    for (i, v) in spec.volumes.iter().enumerate() {
        let path = format!("{at}.volumes[{i}]");
        errs.check(format!("{path}.name"), validate::dns1123_label(&v.name));
        if !vnames.insert(v.name.as_str()) {
            errs.add(
                format!("{path}.name"),
                format!("duplicate volume name {:?}", v.name),
            );
        }
        match v.type_count() {
            0 => errs.add(
                &path,
                "must specify a volume type (emptyDir, hostPath, configMap, secret, projected or downwardAPI)",
            ),
            1 => {}
            _ => errs.add(&path, "may not specify more than one volume type"),
        }
        if let Some(c) = &v.config_map {
            errs.check(
                format!("{path}.configMap.name"),
                validate::dns1123_subdomain(&c.name),
            );
            validate_items(&c.items, &format!("{path}.configMap"), errs);
            validate_mode(
                c.default_mode,
                format!("{path}.configMap.defaultMode"),
                errs,
            );
        }
        if let Some(c) = &v.secret {
            errs.check(
                format!("{path}.secret.secretName"),
                validate::dns1123_subdomain(&c.secret_name),
            );
            validate_items(&c.items, &format!("{path}.secret"), errs);
            validate_mode(c.default_mode, format!("{path}.secret.defaultMode"), errs);
        }
        if let Some(d) = &v.downward_api {
            validate_downward_items(&d.items, &format!("{path}.downwardAPI"), errs);
            validate_mode(
                d.default_mode,
                format!("{path}.downwardAPI.defaultMode"),
                errs,
            );
        }
        if let Some(p) = &v.projected {
            validate_mode(
                p.default_mode,
                format!("{path}.projected.defaultMode"),
                errs,
            );
            for (j, src) in p.sources.iter().enumerate() {
                let at = format!("{path}.projected.sources[{j}]");
                match (&src.config_map, &src.secret, &src.downward_api) {
                    (None, None, Some(d)) => {
                        validate_downward_items(&d.items, &format!("{at}.downwardAPI"), errs);
                    }
                    (Some(c), None, None) => {
                        errs.check(
                            format!("{at}.configMap.name"),
                            validate::dns1123_subdomain(&c.name),
                        );
                        validate_items(&c.items, &format!("{at}.configMap"), errs);
                    }
                    (None, Some(c), None) => {
                        errs.check(
                            format!("{at}.secret.name"),
                            validate::dns1123_subdomain(&c.name),
                        );
                        validate_items(&c.items, &format!("{at}.secret"), errs);
                    }
                    _ => errs.add(
                        &at,
                        "must specify exactly one of configMap, secret or downwardAPI",
                    ),
                }
            }
        }
        match (&v.empty_dir, &v.host_path) {
            (Some(e), None) if !matches!(e.medium.as_str(), "" | "Memory") => {
                errs.add(
                    format!("{path}.emptyDir.medium"),
                    format!("{:?} is not supported (use \"\" or Memory)", e.medium),
                );
            }
            (None, Some(h)) => {
                if !h.path.starts_with('/') || h.path.split('/').any(|p| p == "..") {
                    errs.add(
                        format!("{path}.hostPath.path"),
                        format!("{:?} must be an absolute path without '..'", h.path),
                    );
                }
                if !matches!(
                    h.type_.as_str(),
                    "" | "DirectoryOrCreate" | "Directory" | "FileOrCreate" | "File"
                ) {
                    errs.add(
                        format!("{path}.hostPath.type"),
                        format!("{:?} is not supported", h.type_),
                    );
                }
            }
            _ => {}
        }
    }
    if !spec.node_name.is_empty() {
        errs.check(
            format!("{at}.nodeName"),
            validate::dns1123_subdomain(&spec.node_name),
        );
    }
    for (k, v) in &spec.node_selector {
        errs.check(format!("{at}.nodeSelector"), validate::label_key(k));
        errs.check(format!("{at}.nodeSelector[{k}]"), validate::label_value(v));
    }
    if let Some(g) = spec.termination_grace_period_seconds
        && g < 0
    {
        errs.add(
            format!("{at}.terminationGracePeriodSeconds"),
            format!("{g} must be non-negative"),
        );
    }
    if !spec.hostname.is_empty() {
        errs.check(
            format!("{at}.hostname"),
            validate::dns1123_label(&spec.hostname),
        );
    }
    if !spec.subdomain.is_empty() {
        errs.check(
            format!("{at}.subdomain"),
            validate::dns1123_label(&spec.subdomain),
        );
    }
    validate_dns(spec, at, errs);
    // Kubernetes' validatePodSpecSecurityContext: one PID namespace or
    // the other.
    if spec.host_pid
        && spec
            .preserved
            .get("shareProcessNamespace")
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    {
        errs.add(
            format!("{at}.shareProcessNamespace"),
            "ShareProcessNamespace and HostPID cannot both be enabled",
        );
    }
    for (i, a) in spec.host_aliases.iter().enumerate() {
        let f = format!("{at}.hostAliases[{i}]");
        if a.ip.parse::<std::net::IpAddr>().is_err() {
            errs.add(
                format!("{f}.ip"),
                format!("{:?} is not an IP address", a.ip),
            );
        }
        for (j, h) in a.hostnames.iter().enumerate() {
            errs.check(
                format!("{f}.hostnames[{j}]"),
                validate::dns1123_subdomain(h),
            );
        }
    }
}

/// Kubernetes' validateDNSPolicy and validatePodDNSConfig.
fn validate_dns(spec: &PodSpec, at: &str, errs: &mut Errors) {
    let none = spec.dns_policy == Some(DnsPolicy::None);
    let Some(cfg) = &spec.dns_config else {
        if none {
            errs.add(
                format!("{at}.dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            );
        }
        return;
    };
    let f = format!("{at}.dnsConfig");
    if none && cfg.nameservers.is_empty() {
        errs.add(
            format!("{f}.nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        );
    }
    if cfg.nameservers.len() > MAX_DNS_NAMESERVERS {
        errs.add(
            format!("{f}.nameservers"),
            format!("must not have more than {MAX_DNS_NAMESERVERS} nameservers"),
        );
    }
    for (i, ns) in cfg.nameservers.iter().enumerate() {
        if ns.parse::<std::net::IpAddr>().is_err() {
            errs.add(
                format!("{f}.nameservers[{i}]"),
                format!("{ns:?} is not an IP address"),
            );
        }
    }
    if cfg.searches.len() > MAX_DNS_SEARCHES {
        errs.add(
            format!("{f}.searches"),
            format!("must not have more than {MAX_DNS_SEARCHES} search paths"),
        );
    }
    let chars = cfg.searches.iter().map(String::len).sum::<usize>() + cfg.searches.len();
    if chars > MAX_DNS_SEARCH_CHARS {
        errs.add(
            format!("{f}.searches"),
            format!("must not have more than {MAX_DNS_SEARCH_CHARS} characters (including spaces) in the search list"),
        );
    }
    for (i, s) in cfg.searches.iter().enumerate() {
        // A trailing dot (a fully qualified name) is allowed.
        errs.check(
            format!("{f}.searches[{i}]"),
            validate::dns1123_subdomain(s.strip_suffix('.').unwrap_or(s)),
        );
    }
    for (i, o) in cfg.options.iter().enumerate() {
        if o.name.is_empty() {
            errs.add(format!("{f}.options[{i}].name"), "must not be empty");
        }
    }
}

/// Kubernetes' rules for `seccompProfile`: one of the three types, and a
/// relative `localhostProfile` exactly when the type is `Localhost`.
fn validate_seccomp_profile(p: &SeccompProfile, at: &str, errs: &mut Errors) {
    let local = p.localhost_profile.as_deref().unwrap_or_default();
    match p.type_.as_str() {
        "RuntimeDefault" | "Unconfined" => {
            if p.localhost_profile.is_some() {
                errs.add(
                    format!("{at}.localhostProfile"),
                    "can only be set when type is Localhost",
                );
            }
        }
        "Localhost" => {
            if local.is_empty() {
                errs.add(
                    format!("{at}.localhostProfile"),
                    "required when type is Localhost",
                );
            } else if local.starts_with('/') || local.split('/').any(|s| s == "..") {
                errs.add(
                    format!("{at}.localhostProfile"),
                    format!("{local:?} must be a relative path without '..'"),
                );
            }
        }
        other => errs.add(
            format!("{at}.type"),
            format!(
                "{other:?}: supported values: \"Localhost\", \"RuntimeDefault\", \"Unconfined\""
            ),
        ),
    }
}

fn validate_probe(p: &Probe, at: &str, errs: &mut Errors) {
    let handlers = [
        p.exec.is_some(),
        p.http_get.is_some(),
        p.tcp_socket.is_some(),
        p.grpc.is_some(),
    ];
    match handlers.iter().filter(|h| **h).count() {
        0 => errs.add(
            at,
            "must specify a handler: exec, httpGet, tcpSocket or grpc",
        ),
        1 => {}
        _ => errs.add(at, "may not specify more than one handler"),
    }
    if let Some(e) = &p.exec
        && e.command.is_empty()
    {
        errs.add(format!("{at}.exec.command"), "required");
    }
    let check_port = |port: &IntOrString, field: String, errs: &mut Errors| match port {
        IntOrString::Int(n) => errs.check(field, validate::port(*n)),
        IntOrString::String(s) => errs.check(field, validate::iana_svc_name(s)),
    };
    if let Some(h) = &p.http_get {
        check_port(&h.port, format!("{at}.httpGet.port"), errs);
        if !matches!(h.scheme.as_str(), "" | "HTTP") {
            errs.add(
                format!("{at}.httpGet.scheme"),
                format!("{:?} is not supported (use HTTP)", h.scheme),
            );
        }
        if !h.path.is_empty() && !h.path.starts_with('/') {
            errs.add(
                format!("{at}.httpGet.path"),
                format!("{:?} must start with '/'", h.path),
            );
        }
    }
    if let Some(t) = &p.tcp_socket {
        check_port(&t.port, format!("{at}.tcpSocket.port"), errs);
    }
    if let Some(g) = &p.grpc {
        errs.check(format!("{at}.grpc.port"), validate::port(g.port));
    }
    let fields = [
        ("initialDelaySeconds", p.initial_delay_seconds, 0),
        ("periodSeconds", p.period_seconds, 1),
        ("timeoutSeconds", p.timeout_seconds, 1),
        ("successThreshold", p.success_threshold, 1),
        ("failureThreshold", p.failure_threshold, 1),
    ];
    for (name, value, min) in fields {
        if let Some(v) = value
            && v < min
        {
            errs.add(
                format!("{at}.{name}"),
                format!("{v} must be at least {min}"),
            );
        }
    }
}

impl Resource for Pod {
    const KIND: &'static str = "Pod";
    const API_VERSION: &'static str = "v1";
    const PLURAL: &'static str = "pods";
    const NAMESPACED: bool = true;
    const EXTRA_FIELDS: &'static [&'static str] =
        &["spec.nodeName", "status.phase", "status.podIP"];

    crate::resource::resource_common!();

    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        crate::resource::validate_common(self, &self.api_version, &self.kind, &mut errs);
        if !self.metadata.name.is_empty() {
            errs.check(
                "metadata.name",
                validate::dns1123_subdomain(&self.metadata.name),
            );
        }
        validate_spec(&self.spec, "spec", &mut errs);
        errs.0
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        // The scheduler binds a pod once: nodeName may go from empty to set.
        if !old.spec.node_name.is_empty() && self.spec.node_name != old.spec.node_name {
            errs.add(
                "spec.nodeName",
                "is immutable once the pod is bound to a node",
            );
        }
        let (mut new, mut was) = (self.spec.clone(), old.spec.clone());
        new.node_name.clear();
        was.node_name.clear();
        if new != was {
            errs.add("spec", "a pod's spec is immutable once created (delete and recreate the pod, or use a Deployment)");
        }
        errs.0
    }

    fn field(&self, path: &str) -> Option<String> {
        match path {
            "metadata.name" => Some(self.metadata.name.clone()),
            "metadata.namespace" => Some(self.metadata.namespace.clone()),
            "spec.nodeName" => Some(self.spec.node_name.clone()),
            "status.phase" => Some(
                self.status
                    .phase
                    .map(|p| p.as_str().to_string())
                    .unwrap_or_default(),
            ),
            "status.podIP" => Some(self.status.pod_ip.clone()),
            _ => None,
        }
    }
}
