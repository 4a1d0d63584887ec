//! Schema tables of `k8s.io/api/core/v1` (every message Pod, Node,
//! Service, Endpoints, ConfigMap, Secret and Event reach), from Kubernetes
//! v1.32's `generated.proto` (k8s.io/api v0.32.13); `Ptr` where the Go
//! field is a pointer, `Inline` where JSON inlines an embedded struct.

use super::{F::*, Field, Shape::*, meta};

/// `Pod`.
pub(super) const POD: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "spec", One(Msg(POD_SPEC))),
    (3, "status", One(Msg(POD_STATUS))),
];
/// `PodSpec`.
pub(super) const POD_SPEC: &[Field] = &[
    (1, "volumes", List(Msg(VOLUME))),
    (2, "containers", List(Msg(CONTAINER))),
    (3, "restartPolicy", One(Str)),
    (4, "terminationGracePeriodSeconds", Ptr(Int64)),
    (5, "activeDeadlineSeconds", Ptr(Int64)),
    (6, "dnsPolicy", One(Str)),
    (7, "nodeSelector", Map(Str)),
    (8, "serviceAccountName", One(Str)),
    (9, "serviceAccount", One(Str)),
    (10, "nodeName", One(Str)),
    (11, "hostNetwork", One(Bool)),
    (12, "hostPID", One(Bool)),
    (13, "hostIPC", One(Bool)),
    (14, "securityContext", Ptr(Msg(POD_SECURITY_CONTEXT))),
    (15, "imagePullSecrets", List(Msg(LOCAL_OBJECT_REFERENCE))),
    (16, "hostname", One(Str)),
    (17, "subdomain", One(Str)),
    (18, "affinity", Ptr(Msg(AFFINITY))),
    (19, "schedulerName", One(Str)),
    (20, "initContainers", List(Msg(CONTAINER))),
    (21, "automountServiceAccountToken", Ptr(Bool)),
    (22, "tolerations", List(Msg(TOLERATION))),
    (23, "hostAliases", List(Msg(HOST_ALIAS))),
    (24, "priorityClassName", One(Str)),
    (25, "priority", Ptr(Int32)),
    (26, "dnsConfig", Ptr(Msg(POD_DNS_CONFIG))),
    (27, "shareProcessNamespace", Ptr(Bool)),
    (28, "readinessGates", List(Msg(POD_READINESS_GATE))),
    (29, "runtimeClassName", Ptr(Str)),
    (30, "enableServiceLinks", Ptr(Bool)),
    (31, "preemptionPolicy", Ptr(Str)),
    (32, "overhead", Map(Quantity)),
    (
        33,
        "topologySpreadConstraints",
        List(Msg(TOPOLOGY_SPREAD_CONSTRAINT)),
    ),
    (34, "ephemeralContainers", List(Msg(EPHEMERAL_CONTAINER))),
    (35, "setHostnameAsFQDN", Ptr(Bool)),
    (36, "os", Ptr(Msg(POD_OS))),
    (37, "hostUsers", Ptr(Bool)),
    (38, "schedulingGates", List(Msg(POD_SCHEDULING_GATE))),
    (39, "resourceClaims", List(Msg(POD_RESOURCE_CLAIM))),
    (40, "resources", Ptr(Msg(RESOURCE_REQUIREMENTS))),
];
/// `Volume`.
pub(super) const VOLUME: &[Field] = &[
    (1, "name", One(Str)),
    (2, "volumeSource", Inline(VOLUME_SOURCE)),
];
/// `VolumeSource`.
pub(super) const VOLUME_SOURCE: &[Field] = &[
    (1, "hostPath", Ptr(Msg(HOST_PATH_VOLUME_SOURCE))),
    (2, "emptyDir", Ptr(Msg(EMPTY_DIR_VOLUME_SOURCE))),
    (
        3,
        "gcePersistentDisk",
        Ptr(Msg(GCE_PERSISTENT_DISK_VOLUME_SOURCE)),
    ),
    (
        4,
        "awsElasticBlockStore",
        Ptr(Msg(AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE)),
    ),
    (5, "gitRepo", Ptr(Msg(GIT_REPO_VOLUME_SOURCE))),
    (6, "secret", Ptr(Msg(SECRET_VOLUME_SOURCE))),
    (7, "nfs", Ptr(Msg(NFS_VOLUME_SOURCE))),
    (8, "iscsi", Ptr(Msg(ISCSI_VOLUME_SOURCE))),
    (9, "glusterfs", Ptr(Msg(GLUSTERFS_VOLUME_SOURCE))),
    (
        10,
        "persistentVolumeClaim",
        Ptr(Msg(PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE)),
    ),
    (11, "rbd", Ptr(Msg(RBD_VOLUME_SOURCE))),
    (12, "flexVolume", Ptr(Msg(FLEX_VOLUME_SOURCE))),
    (13, "cinder", Ptr(Msg(CINDER_VOLUME_SOURCE))),
    (14, "cephfs", Ptr(Msg(CEPH_FS_VOLUME_SOURCE))),
    (15, "flocker", Ptr(Msg(FLOCKER_VOLUME_SOURCE))),
    (16, "downwardAPI", Ptr(Msg(DOWNWARD_API_VOLUME_SOURCE))),
    (17, "fc", Ptr(Msg(FC_VOLUME_SOURCE))),
    (18, "azureFile", Ptr(Msg(AZURE_FILE_VOLUME_SOURCE))),
    (19, "configMap", Ptr(Msg(CONFIG_MAP_VOLUME_SOURCE))),
    (
        20,
        "vsphereVolume",
        Ptr(Msg(VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE)),
    ),
    (21, "quobyte", Ptr(Msg(QUOBYTE_VOLUME_SOURCE))),
    (22, "azureDisk", Ptr(Msg(AZURE_DISK_VOLUME_SOURCE))),
    (
        23,
        "photonPersistentDisk",
        Ptr(Msg(PHOTON_PERSISTENT_DISK_VOLUME_SOURCE)),
    ),
    (24, "portworxVolume", Ptr(Msg(PORTWORX_VOLUME_SOURCE))),
    (25, "scaleIO", Ptr(Msg(SCALE_IO_VOLUME_SOURCE))),
    (26, "projected", Ptr(Msg(PROJECTED_VOLUME_SOURCE))),
    (27, "storageos", Ptr(Msg(STORAGE_OS_VOLUME_SOURCE))),
    (28, "csi", Ptr(Msg(CSI_VOLUME_SOURCE))),
    (29, "ephemeral", Ptr(Msg(EPHEMERAL_VOLUME_SOURCE))),
    (30, "image", Ptr(Msg(IMAGE_VOLUME_SOURCE))),
];
/// `HostPathVolumeSource`.
pub(super) const HOST_PATH_VOLUME_SOURCE: &[Field] =
    &[(1, "path", One(Str)), (2, "type", Ptr(Str))];
/// `EmptyDirVolumeSource`.
pub(super) const EMPTY_DIR_VOLUME_SOURCE: &[Field] =
    &[(1, "medium", One(Str)), (2, "sizeLimit", Ptr(Quantity))];
/// `GCEPersistentDiskVolumeSource`.
pub(super) const GCE_PERSISTENT_DISK_VOLUME_SOURCE: &[Field] = &[
    (1, "pdName", One(Str)),
    (2, "fsType", One(Str)),
    (3, "partition", One(Int32)),
    (4, "readOnly", One(Bool)),
];
/// `AWSElasticBlockStoreVolumeSource`.
pub(super) const AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: &[Field] = &[
    (1, "volumeID", One(Str)),
    (2, "fsType", One(Str)),
    (3, "partition", One(Int32)),
    (4, "readOnly", One(Bool)),
];
/// `GitRepoVolumeSource`.
pub(super) const GIT_REPO_VOLUME_SOURCE: &[Field] = &[
    (1, "repository", One(Str)),
    (2, "revision", One(Str)),
    (3, "directory", One(Str)),
];
/// `SecretVolumeSource`.
pub(super) const SECRET_VOLUME_SOURCE: &[Field] = &[
    (1, "secretName", One(Str)),
    (2, "items", List(Msg(KEY_TO_PATH))),
    (3, "defaultMode", Ptr(Int32)),
    (4, "optional", Ptr(Bool)),
];
/// `KeyToPath`.
pub(super) const KEY_TO_PATH: &[Field] = &[
    (1, "key", One(Str)),
    (2, "path", One(Str)),
    (3, "mode", Ptr(Int32)),
];
/// `NFSVolumeSource`.
pub(super) const NFS_VOLUME_SOURCE: &[Field] = &[
    (1, "server", One(Str)),
    (2, "path", One(Str)),
    (3, "readOnly", One(Bool)),
];
/// `ISCSIVolumeSource`.
pub(super) const ISCSI_VOLUME_SOURCE: &[Field] = &[
    (1, "targetPortal", One(Str)),
    (2, "iqn", One(Str)),
    (3, "lun", One(Int32)),
    (4, "iscsiInterface", One(Str)),
    (5, "fsType", One(Str)),
    (6, "readOnly", One(Bool)),
    (7, "portals", List(Str)),
    (8, "chapAuthDiscovery", One(Bool)),
    (10, "secretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
    (11, "chapAuthSession", One(Bool)),
    (12, "initiatorName", Ptr(Str)),
];
/// `LocalObjectReference`.
pub(super) const LOCAL_OBJECT_REFERENCE: &[Field] = &[(1, "name", One(Str))];
/// `GlusterfsVolumeSource`.
pub(super) const GLUSTERFS_VOLUME_SOURCE: &[Field] = &[
    (1, "endpoints", One(Str)),
    (2, "path", One(Str)),
    (3, "readOnly", One(Bool)),
];
/// `PersistentVolumeClaimVolumeSource`.
pub(super) const PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: &[Field] =
    &[(1, "claimName", One(Str)), (2, "readOnly", One(Bool))];
/// `RBDVolumeSource`.
pub(super) const RBD_VOLUME_SOURCE: &[Field] = &[
    (1, "monitors", List(Str)),
    (2, "image", One(Str)),
    (3, "fsType", One(Str)),
    (4, "pool", One(Str)),
    (5, "user", One(Str)),
    (6, "keyring", One(Str)),
    (7, "secretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
    (8, "readOnly", One(Bool)),
];
/// `FlexVolumeSource`.
pub(super) const FLEX_VOLUME_SOURCE: &[Field] = &[
    (1, "driver", One(Str)),
    (2, "fsType", One(Str)),
    (3, "secretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
    (4, "readOnly", One(Bool)),
    (5, "options", Map(Str)),
];
/// `CinderVolumeSource`.
pub(super) const CINDER_VOLUME_SOURCE: &[Field] = &[
    (1, "volumeID", One(Str)),
    (2, "fsType", One(Str)),
    (3, "readOnly", One(Bool)),
    (4, "secretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
];
/// `CephFSVolumeSource`.
pub(super) const CEPH_FS_VOLUME_SOURCE: &[Field] = &[
    (1, "monitors", List(Str)),
    (2, "path", One(Str)),
    (3, "user", One(Str)),
    (4, "secretFile", One(Str)),
    (5, "secretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
    (6, "readOnly", One(Bool)),
];
/// `FlockerVolumeSource`.
pub(super) const FLOCKER_VOLUME_SOURCE: &[Field] =
    &[(1, "datasetName", One(Str)), (2, "datasetUUID", One(Str))];
/// `DownwardAPIVolumeSource`.
pub(super) const DOWNWARD_API_VOLUME_SOURCE: &[Field] = &[
    (1, "items", List(Msg(DOWNWARD_API_VOLUME_FILE))),
    (2, "defaultMode", Ptr(Int32)),
];
/// `DownwardAPIVolumeFile`.
pub(super) const DOWNWARD_API_VOLUME_FILE: &[Field] = &[
    (1, "path", One(Str)),
    (2, "fieldRef", Ptr(Msg(OBJECT_FIELD_SELECTOR))),
    (3, "resourceFieldRef", Ptr(Msg(RESOURCE_FIELD_SELECTOR))),
    (4, "mode", Ptr(Int32)),
];
/// `ObjectFieldSelector`.
pub(super) const OBJECT_FIELD_SELECTOR: &[Field] =
    &[(1, "apiVersion", One(Str)), (2, "fieldPath", One(Str))];
/// `ResourceFieldSelector`.
pub(super) const RESOURCE_FIELD_SELECTOR: &[Field] = &[
    (1, "containerName", One(Str)),
    (2, "resource", One(Str)),
    (3, "divisor", One(Quantity)),
];
/// `FCVolumeSource`.
pub(super) const FC_VOLUME_SOURCE: &[Field] = &[
    (1, "targetWWNs", List(Str)),
    (2, "lun", Ptr(Int32)),
    (3, "fsType", One(Str)),
    (4, "readOnly", One(Bool)),
    (5, "wwids", List(Str)),
];
/// `AzureFileVolumeSource`.
pub(super) const AZURE_FILE_VOLUME_SOURCE: &[Field] = &[
    (1, "secretName", One(Str)),
    (2, "shareName", One(Str)),
    (3, "readOnly", One(Bool)),
];
/// `ConfigMapVolumeSource`.
pub(super) const CONFIG_MAP_VOLUME_SOURCE: &[Field] = &[
    (1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    (2, "items", List(Msg(KEY_TO_PATH))),
    (3, "defaultMode", Ptr(Int32)),
    (4, "optional", Ptr(Bool)),
];
/// `VsphereVirtualDiskVolumeSource`.
pub(super) const VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: &[Field] = &[
    (1, "volumePath", One(Str)),
    (2, "fsType", One(Str)),
    (3, "storagePolicyName", One(Str)),
    (4, "storagePolicyID", One(Str)),
];
/// `QuobyteVolumeSource`.
pub(super) const QUOBYTE_VOLUME_SOURCE: &[Field] = &[
    (1, "registry", One(Str)),
    (2, "volume", One(Str)),
    (3, "readOnly", One(Bool)),
    (4, "user", One(Str)),
    (5, "group", One(Str)),
    (6, "tenant", One(Str)),
];
/// `AzureDiskVolumeSource`.
pub(super) const AZURE_DISK_VOLUME_SOURCE: &[Field] = &[
    (1, "diskName", One(Str)),
    (2, "diskURI", One(Str)),
    (3, "cachingMode", Ptr(Str)),
    (4, "fsType", Ptr(Str)),
    (5, "readOnly", Ptr(Bool)),
    (6, "kind", Ptr(Str)),
];
/// `PhotonPersistentDiskVolumeSource`.
pub(super) const PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: &[Field] =
    &[(1, "pdID", One(Str)), (2, "fsType", One(Str))];
/// `ProjectedVolumeSource`.
pub(super) const PROJECTED_VOLUME_SOURCE: &[Field] = &[
    (1, "sources", List(Msg(VOLUME_PROJECTION))),
    (2, "defaultMode", Ptr(Int32)),
];
/// `VolumeProjection`.
pub(super) const VOLUME_PROJECTION: &[Field] = &[
    (1, "secret", Ptr(Msg(SECRET_PROJECTION))),
    (2, "downwardAPI", Ptr(Msg(DOWNWARD_API_PROJECTION))),
    (3, "configMap", Ptr(Msg(CONFIG_MAP_PROJECTION))),
    (
        4,
        "serviceAccountToken",
        Ptr(Msg(SERVICE_ACCOUNT_TOKEN_PROJECTION)),
    ),
    (
        5,
        "clusterTrustBundle",
        Ptr(Msg(CLUSTER_TRUST_BUNDLE_PROJECTION)),
    ),
];
/// `SecretProjection`.
pub(super) const SECRET_PROJECTION: &[Field] = &[
    (1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    (2, "items", List(Msg(KEY_TO_PATH))),
    (4, "optional", Ptr(Bool)),
];
/// `DownwardAPIProjection`.
pub(super) const DOWNWARD_API_PROJECTION: &[Field] =
    &[(1, "items", List(Msg(DOWNWARD_API_VOLUME_FILE)))];
/// `ConfigMapProjection`.
pub(super) const CONFIG_MAP_PROJECTION: &[Field] = &[
    (1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    (2, "items", List(Msg(KEY_TO_PATH))),
    (4, "optional", Ptr(Bool)),
];
/// `ServiceAccountTokenProjection`.
pub(super) const SERVICE_ACCOUNT_TOKEN_PROJECTION: &[Field] = &[
    (1, "audience", One(Str)),
    (2, "expirationSeconds", Ptr(Int64)),
    (3, "path", One(Str)),
];
/// `ClusterTrustBundleProjection`.
pub(super) const CLUSTER_TRUST_BUNDLE_PROJECTION: &[Field] = &[
    (1, "name", Ptr(Str)),
    (2, "signerName", Ptr(Str)),
    (3, "labelSelector", Ptr(Msg(meta::LABEL_SELECTOR))),
    (4, "path", One(Str)),
    (5, "optional", Ptr(Bool)),
];
/// `PortworxVolumeSource`.
pub(super) const PORTWORX_VOLUME_SOURCE: &[Field] = &[
    (1, "volumeID", One(Str)),
    (2, "fsType", One(Str)),
    (3, "readOnly", One(Bool)),
];
/// `ScaleIOVolumeSource`.
pub(super) const SCALE_IO_VOLUME_SOURCE: &[Field] = &[
    (1, "gateway", One(Str)),
    (2, "system", One(Str)),
    (3, "secretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
    (4, "sslEnabled", One(Bool)),
    (5, "protectionDomain", One(Str)),
    (6, "storagePool", One(Str)),
    (7, "storageMode", One(Str)),
    (8, "volumeName", One(Str)),
    (9, "fsType", One(Str)),
    (10, "readOnly", One(Bool)),
];
/// `StorageOSVolumeSource`.
pub(super) const STORAGE_OS_VOLUME_SOURCE: &[Field] = &[
    (1, "volumeName", One(Str)),
    (2, "volumeNamespace", One(Str)),
    (3, "fsType", One(Str)),
    (4, "readOnly", One(Bool)),
    (5, "secretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
];
/// `CSIVolumeSource`.
pub(super) const CSI_VOLUME_SOURCE: &[Field] = &[
    (1, "driver", One(Str)),
    (2, "readOnly", Ptr(Bool)),
    (3, "fsType", Ptr(Str)),
    (4, "volumeAttributes", Map(Str)),
    (5, "nodePublishSecretRef", Ptr(Msg(LOCAL_OBJECT_REFERENCE))),
];
/// `EphemeralVolumeSource`.
pub(super) const EPHEMERAL_VOLUME_SOURCE: &[Field] = &[(
    1,
    "volumeClaimTemplate",
    Ptr(Msg(PERSISTENT_VOLUME_CLAIM_TEMPLATE)),
)];
/// `PersistentVolumeClaimTemplate`.
pub(super) const PERSISTENT_VOLUME_CLAIM_TEMPLATE: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "spec", One(Msg(PERSISTENT_VOLUME_CLAIM_SPEC))),
];
/// `PersistentVolumeClaimSpec`.
pub(super) const PERSISTENT_VOLUME_CLAIM_SPEC: &[Field] = &[
    (1, "accessModes", List(Str)),
    (2, "resources", One(Msg(VOLUME_RESOURCE_REQUIREMENTS))),
    (3, "volumeName", One(Str)),
    (4, "selector", Ptr(Msg(meta::LABEL_SELECTOR))),
    (5, "storageClassName", Ptr(Str)),
    (6, "volumeMode", Ptr(Str)),
    (7, "dataSource", Ptr(Msg(TYPED_LOCAL_OBJECT_REFERENCE))),
    (8, "dataSourceRef", Ptr(Msg(TYPED_OBJECT_REFERENCE))),
    (9, "volumeAttributesClassName", Ptr(Str)),
];
/// `VolumeResourceRequirements`.
pub(super) const VOLUME_RESOURCE_REQUIREMENTS: &[Field] =
    &[(1, "limits", Map(Quantity)), (2, "requests", Map(Quantity))];
/// `TypedLocalObjectReference`.
pub(super) const TYPED_LOCAL_OBJECT_REFERENCE: &[Field] = &[
    (1, "apiGroup", Ptr(Str)),
    (2, "kind", One(Str)),
    (3, "name", One(Str)),
];
/// `TypedObjectReference`.
pub(super) const TYPED_OBJECT_REFERENCE: &[Field] = &[
    (1, "apiGroup", Ptr(Str)),
    (2, "kind", One(Str)),
    (3, "name", One(Str)),
    (4, "namespace", Ptr(Str)),
];
/// `ImageVolumeSource`.
pub(super) const IMAGE_VOLUME_SOURCE: &[Field] =
    &[(1, "reference", One(Str)), (2, "pullPolicy", One(Str))];
/// `Container`.
pub(super) const CONTAINER: &[Field] = &[
    (1, "name", One(Str)),
    (2, "image", One(Str)),
    (3, "command", List(Str)),
    (4, "args", List(Str)),
    (5, "workingDir", One(Str)),
    (6, "ports", List(Msg(CONTAINER_PORT))),
    (7, "env", List(Msg(ENV_VAR))),
    (8, "resources", One(Msg(RESOURCE_REQUIREMENTS))),
    (9, "volumeMounts", List(Msg(VOLUME_MOUNT))),
    (10, "livenessProbe", Ptr(Msg(PROBE))),
    (11, "readinessProbe", Ptr(Msg(PROBE))),
    (12, "lifecycle", Ptr(Msg(LIFECYCLE))),
    (13, "terminationMessagePath", One(Str)),
    (14, "imagePullPolicy", One(Str)),
    (15, "securityContext", Ptr(Msg(SECURITY_CONTEXT))),
    (16, "stdin", One(Bool)),
    (17, "stdinOnce", One(Bool)),
    (18, "tty", One(Bool)),
    (19, "envFrom", List(Msg(ENV_FROM_SOURCE))),
    (20, "terminationMessagePolicy", One(Str)),
    (21, "volumeDevices", List(Msg(VOLUME_DEVICE))),
    (22, "startupProbe", Ptr(Msg(PROBE))),
    (23, "resizePolicy", List(Msg(CONTAINER_RESIZE_POLICY))),
    (24, "restartPolicy", Ptr(Str)),
];
/// `ContainerPort`.
pub(super) const CONTAINER_PORT: &[Field] = &[
    (1, "name", One(Str)),
    (2, "hostPort", One(Int32)),
    (3, "containerPort", One(Int32)),
    (4, "protocol", One(Str)),
    (5, "hostIP", One(Str)),
];
/// `EnvFromSource`.
pub(super) const ENV_FROM_SOURCE: &[Field] = &[
    (1, "prefix", One(Str)),
    (2, "configMapRef", Ptr(Msg(CONFIG_MAP_ENV_SOURCE))),
    (3, "secretRef", Ptr(Msg(SECRET_ENV_SOURCE))),
];
/// `ConfigMapEnvSource`.
pub(super) const CONFIG_MAP_ENV_SOURCE: &[Field] = &[
    (1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    (2, "optional", Ptr(Bool)),
];
/// `SecretEnvSource`.
pub(super) const SECRET_ENV_SOURCE: &[Field] = &[
    (1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    (2, "optional", Ptr(Bool)),
];
/// `EnvVar`.
pub(super) const ENV_VAR: &[Field] = &[
    (1, "name", One(Str)),
    (2, "value", One(Str)),
    (3, "valueFrom", Ptr(Msg(ENV_VAR_SOURCE))),
];
/// `EnvVarSource`.
pub(super) const ENV_VAR_SOURCE: &[Field] = &[
    (1, "fieldRef", Ptr(Msg(OBJECT_FIELD_SELECTOR))),
    (2, "resourceFieldRef", Ptr(Msg(RESOURCE_FIELD_SELECTOR))),
    (3, "configMapKeyRef", Ptr(Msg(CONFIG_MAP_KEY_SELECTOR))),
    (4, "secretKeyRef", Ptr(Msg(SECRET_KEY_SELECTOR))),
];
/// `ConfigMapKeySelector`.
pub(super) const CONFIG_MAP_KEY_SELECTOR: &[Field] = &[
    (1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    (2, "key", One(Str)),
    (3, "optional", Ptr(Bool)),
];
/// `SecretKeySelector`.
pub(super) const SECRET_KEY_SELECTOR: &[Field] = &[
    (1, "localObjectReference", Inline(LOCAL_OBJECT_REFERENCE)),
    (2, "key", One(Str)),
    (3, "optional", Ptr(Bool)),
];
/// `ResourceRequirements`.
pub(super) const RESOURCE_REQUIREMENTS: &[Field] = &[
    (1, "limits", Map(Quantity)),
    (2, "requests", Map(Quantity)),
    (3, "claims", List(Msg(RESOURCE_CLAIM))),
];
/// `ResourceClaim`.
pub(super) const RESOURCE_CLAIM: &[Field] = &[(1, "name", One(Str)), (2, "request", One(Str))];
/// `ContainerResizePolicy`.
pub(super) const CONTAINER_RESIZE_POLICY: &[Field] = &[
    (1, "resourceName", One(Str)),
    (2, "restartPolicy", One(Str)),
];
/// `VolumeMount`.
pub(super) const VOLUME_MOUNT: &[Field] = &[
    (1, "name", One(Str)),
    (2, "readOnly", One(Bool)),
    (3, "mountPath", One(Str)),
    (4, "subPath", One(Str)),
    (5, "mountPropagation", Ptr(Str)),
    (6, "subPathExpr", One(Str)),
    (7, "recursiveReadOnly", Ptr(Str)),
];
/// `VolumeDevice`.
pub(super) const VOLUME_DEVICE: &[Field] = &[(1, "name", One(Str)), (2, "devicePath", One(Str))];
/// `Probe`.
pub(super) const PROBE: &[Field] = &[
    (1, "handler", Inline(PROBE_HANDLER)),
    (2, "initialDelaySeconds", One(Int32)),
    (3, "timeoutSeconds", One(Int32)),
    (4, "periodSeconds", One(Int32)),
    (5, "successThreshold", One(Int32)),
    (6, "failureThreshold", One(Int32)),
    (7, "terminationGracePeriodSeconds", Ptr(Int64)),
];
/// `ProbeHandler`.
pub(super) const PROBE_HANDLER: &[Field] = &[
    (1, "exec", Ptr(Msg(EXEC_ACTION))),
    (2, "httpGet", Ptr(Msg(HTTP_GET_ACTION))),
    (3, "tcpSocket", Ptr(Msg(TCP_SOCKET_ACTION))),
    (4, "grpc", Ptr(Msg(GRPC_ACTION))),
];
/// `ExecAction`.
pub(super) const EXEC_ACTION: &[Field] = &[(1, "command", List(Str))];
/// `HTTPGetAction`.
pub(super) const HTTP_GET_ACTION: &[Field] = &[
    (1, "path", One(Str)),
    (2, "port", One(IntOrString)),
    (3, "host", One(Str)),
    (4, "scheme", One(Str)),
    (5, "httpHeaders", List(Msg(HTTP_HEADER))),
];
/// `HTTPHeader`.
pub(super) const HTTP_HEADER: &[Field] = &[(1, "name", One(Str)), (2, "value", One(Str))];
/// `TCPSocketAction`.
pub(super) const TCP_SOCKET_ACTION: &[Field] =
    &[(1, "port", One(IntOrString)), (2, "host", One(Str))];
/// `GRPCAction`.
pub(super) const GRPC_ACTION: &[Field] = &[(1, "port", One(Int32)), (2, "service", Ptr(Str))];
/// `Lifecycle`.
pub(super) const LIFECYCLE: &[Field] = &[
    (1, "postStart", Ptr(Msg(LIFECYCLE_HANDLER))),
    (2, "preStop", Ptr(Msg(LIFECYCLE_HANDLER))),
];
/// `LifecycleHandler`.
pub(super) const LIFECYCLE_HANDLER: &[Field] = &[
    (1, "exec", Ptr(Msg(EXEC_ACTION))),
    (2, "httpGet", Ptr(Msg(HTTP_GET_ACTION))),
    (3, "tcpSocket", Ptr(Msg(TCP_SOCKET_ACTION))),
    (4, "sleep", Ptr(Msg(SLEEP_ACTION))),
];
/// `SleepAction`.
pub(super) const SLEEP_ACTION: &[Field] = &[(1, "seconds", One(Int64))];
/// `SecurityContext`.
pub(super) const SECURITY_CONTEXT: &[Field] = &[
    (1, "capabilities", Ptr(Msg(CAPABILITIES))),
    (2, "privileged", Ptr(Bool)),
    (3, "seLinuxOptions", Ptr(Msg(SE_LINUX_OPTIONS))),
    (4, "runAsUser", Ptr(Int64)),
    (5, "runAsNonRoot", Ptr(Bool)),
    (6, "readOnlyRootFilesystem", Ptr(Bool)),
    (7, "allowPrivilegeEscalation", Ptr(Bool)),
    (8, "runAsGroup", Ptr(Int64)),
    (9, "procMount", Ptr(Str)),
    (
        10,
        "windowsOptions",
        Ptr(Msg(WINDOWS_SECURITY_CONTEXT_OPTIONS)),
    ),
    (11, "seccompProfile", Ptr(Msg(SECCOMP_PROFILE))),
    (12, "appArmorProfile", Ptr(Msg(APP_ARMOR_PROFILE))),
];
/// `Capabilities`.
pub(super) const CAPABILITIES: &[Field] = &[(1, "add", List(Str)), (2, "drop", List(Str))];
/// `SELinuxOptions`.
pub(super) const SE_LINUX_OPTIONS: &[Field] = &[
    (1, "user", One(Str)),
    (2, "role", One(Str)),
    (3, "type", One(Str)),
    (4, "level", One(Str)),
];
/// `WindowsSecurityContextOptions`.
pub(super) const WINDOWS_SECURITY_CONTEXT_OPTIONS: &[Field] = &[
    (1, "gmsaCredentialSpecName", Ptr(Str)),
    (2, "gmsaCredentialSpec", Ptr(Str)),
    (3, "runAsUserName", Ptr(Str)),
    (4, "hostProcess", Ptr(Bool)),
];
/// `SeccompProfile`.
pub(super) const SECCOMP_PROFILE: &[Field] =
    &[(1, "type", One(Str)), (2, "localhostProfile", Ptr(Str))];
/// `AppArmorProfile`.
pub(super) const APP_ARMOR_PROFILE: &[Field] =
    &[(1, "type", One(Str)), (2, "localhostProfile", Ptr(Str))];
/// `EphemeralContainer`.
pub(super) const EPHEMERAL_CONTAINER: &[Field] = &[
    (
        1,
        "ephemeralContainerCommon",
        Inline(EPHEMERAL_CONTAINER_COMMON),
    ),
    (2, "targetContainerName", One(Str)),
];
/// `EphemeralContainerCommon`.
pub(super) const EPHEMERAL_CONTAINER_COMMON: &[Field] = &[
    (1, "name", One(Str)),
    (2, "image", One(Str)),
    (3, "command", List(Str)),
    (4, "args", List(Str)),
    (5, "workingDir", One(Str)),
    (6, "ports", List(Msg(CONTAINER_PORT))),
    (7, "env", List(Msg(ENV_VAR))),
    (8, "resources", One(Msg(RESOURCE_REQUIREMENTS))),
    (9, "volumeMounts", List(Msg(VOLUME_MOUNT))),
    (10, "livenessProbe", Ptr(Msg(PROBE))),
    (11, "readinessProbe", Ptr(Msg(PROBE))),
    (12, "lifecycle", Ptr(Msg(LIFECYCLE))),
    (13, "terminationMessagePath", One(Str)),
    (14, "imagePullPolicy", One(Str)),
    (15, "securityContext", Ptr(Msg(SECURITY_CONTEXT))),
    (16, "stdin", One(Bool)),
    (17, "stdinOnce", One(Bool)),
    (18, "tty", One(Bool)),
    (19, "envFrom", List(Msg(ENV_FROM_SOURCE))),
    (20, "terminationMessagePolicy", One(Str)),
    (21, "volumeDevices", List(Msg(VOLUME_DEVICE))),
    (22, "startupProbe", Ptr(Msg(PROBE))),
    (23, "resizePolicy", List(Msg(CONTAINER_RESIZE_POLICY))),
    (24, "restartPolicy", Ptr(Str)),
];
/// `PodSecurityContext`.
pub(super) const POD_SECURITY_CONTEXT: &[Field] = &[
    (1, "seLinuxOptions", Ptr(Msg(SE_LINUX_OPTIONS))),
    (2, "runAsUser", Ptr(Int64)),
    (3, "runAsNonRoot", Ptr(Bool)),
    (4, "supplementalGroups", List(Int64)),
    (5, "fsGroup", Ptr(Int64)),
    (6, "runAsGroup", Ptr(Int64)),
    (7, "sysctls", List(Msg(SYSCTL))),
    (
        8,
        "windowsOptions",
        Ptr(Msg(WINDOWS_SECURITY_CONTEXT_OPTIONS)),
    ),
    (9, "fsGroupChangePolicy", Ptr(Str)),
    (10, "seccompProfile", Ptr(Msg(SECCOMP_PROFILE))),
    (11, "appArmorProfile", Ptr(Msg(APP_ARMOR_PROFILE))),
    (12, "supplementalGroupsPolicy", Ptr(Str)),
    (13, "seLinuxChangePolicy", Ptr(Str)),
];
/// `Sysctl`.
pub(super) const SYSCTL: &[Field] = &[(1, "name", One(Str)), (2, "value", One(Str))];
/// `Affinity`.
pub(super) const AFFINITY: &[Field] = &[
    (1, "nodeAffinity", Ptr(Msg(NODE_AFFINITY))),
    (2, "podAffinity", Ptr(Msg(POD_AFFINITY))),
    (3, "podAntiAffinity", Ptr(Msg(POD_ANTI_AFFINITY))),
];
/// `NodeAffinity`.
pub(super) const NODE_AFFINITY: &[Field] = &[
    (
        1,
        "requiredDuringSchedulingIgnoredDuringExecution",
        Ptr(Msg(NODE_SELECTOR)),
    ),
    (
        2,
        "preferredDuringSchedulingIgnoredDuringExecution",
        List(Msg(PREFERRED_SCHEDULING_TERM)),
    ),
];
/// `NodeSelector`.
pub(super) const NODE_SELECTOR: &[Field] =
    &[(1, "nodeSelectorTerms", List(Msg(NODE_SELECTOR_TERM)))];
/// `NodeSelectorTerm`.
pub(super) const NODE_SELECTOR_TERM: &[Field] = &[
    (1, "matchExpressions", List(Msg(NODE_SELECTOR_REQUIREMENT))),
    (2, "matchFields", List(Msg(NODE_SELECTOR_REQUIREMENT))),
];
/// `NodeSelectorRequirement`.
pub(super) const NODE_SELECTOR_REQUIREMENT: &[Field] = &[
    (1, "key", One(Str)),
    (2, "operator", One(Str)),
    (3, "values", List(Str)),
];
/// `PreferredSchedulingTerm`.
pub(super) const PREFERRED_SCHEDULING_TERM: &[Field] = &[
    (1, "weight", One(Int32)),
    (2, "preference", One(Msg(NODE_SELECTOR_TERM))),
];
/// `PodAffinity`.
pub(super) const POD_AFFINITY: &[Field] = &[
    (
        1,
        "requiredDuringSchedulingIgnoredDuringExecution",
        List(Msg(POD_AFFINITY_TERM)),
    ),
    (
        2,
        "preferredDuringSchedulingIgnoredDuringExecution",
        List(Msg(WEIGHTED_POD_AFFINITY_TERM)),
    ),
];
/// `PodAffinityTerm`.
pub(super) const POD_AFFINITY_TERM: &[Field] = &[
    (1, "labelSelector", Ptr(Msg(meta::LABEL_SELECTOR))),
    (2, "namespaces", List(Str)),
    (3, "topologyKey", One(Str)),
    (4, "namespaceSelector", Ptr(Msg(meta::LABEL_SELECTOR))),
    (5, "matchLabelKeys", List(Str)),
    (6, "mismatchLabelKeys", List(Str)),
];
/// `WeightedPodAffinityTerm`.
pub(super) const WEIGHTED_POD_AFFINITY_TERM: &[Field] = &[
    (1, "weight", One(Int32)),
    (2, "podAffinityTerm", One(Msg(POD_AFFINITY_TERM))),
];
/// `PodAntiAffinity`.
pub(super) const POD_ANTI_AFFINITY: &[Field] = &[
    (
        1,
        "requiredDuringSchedulingIgnoredDuringExecution",
        List(Msg(POD_AFFINITY_TERM)),
    ),
    (
        2,
        "preferredDuringSchedulingIgnoredDuringExecution",
        List(Msg(WEIGHTED_POD_AFFINITY_TERM)),
    ),
];
/// `Toleration`.
pub(super) const TOLERATION: &[Field] = &[
    (1, "key", One(Str)),
    (2, "operator", One(Str)),
    (3, "value", One(Str)),
    (4, "effect", One(Str)),
    (5, "tolerationSeconds", Ptr(Int64)),
];
/// `HostAlias`.
pub(super) const HOST_ALIAS: &[Field] = &[(1, "ip", One(Str)), (2, "hostnames", List(Str))];
/// `PodDNSConfig`.
pub(super) const POD_DNS_CONFIG: &[Field] = &[
    (1, "nameservers", List(Str)),
    (2, "searches", List(Str)),
    (3, "options", List(Msg(POD_DNS_CONFIG_OPTION))),
];
/// `PodDNSConfigOption`.
pub(super) const POD_DNS_CONFIG_OPTION: &[Field] = &[(1, "name", One(Str)), (2, "value", Ptr(Str))];
/// `PodReadinessGate`.
pub(super) const POD_READINESS_GATE: &[Field] = &[(1, "conditionType", One(Str))];
/// `TopologySpreadConstraint`.
pub(super) const TOPOLOGY_SPREAD_CONSTRAINT: &[Field] = &[
    (1, "maxSkew", One(Int32)),
    (2, "topologyKey", One(Str)),
    (3, "whenUnsatisfiable", One(Str)),
    (4, "labelSelector", Ptr(Msg(meta::LABEL_SELECTOR))),
    (5, "minDomains", Ptr(Int32)),
    (6, "nodeAffinityPolicy", Ptr(Str)),
    (7, "nodeTaintsPolicy", Ptr(Str)),
    (8, "matchLabelKeys", List(Str)),
];
/// `PodOS`.
pub(super) const POD_OS: &[Field] = &[(1, "name", One(Str))];
/// `PodSchedulingGate`.
pub(super) const POD_SCHEDULING_GATE: &[Field] = &[(1, "name", One(Str))];
/// `PodResourceClaim`.
pub(super) const POD_RESOURCE_CLAIM: &[Field] = &[
    (1, "name", One(Str)),
    (3, "resourceClaimName", Ptr(Str)),
    (4, "resourceClaimTemplateName", Ptr(Str)),
];
/// `PodStatus`.
pub(super) const POD_STATUS: &[Field] = &[
    (1, "phase", One(Str)),
    (2, "conditions", List(Msg(POD_CONDITION))),
    (3, "message", One(Str)),
    (4, "reason", One(Str)),
    (5, "hostIP", One(Str)),
    (6, "podIP", One(Str)),
    (7, "startTime", Ptr(Time)),
    (8, "containerStatuses", List(Msg(CONTAINER_STATUS))),
    (9, "qosClass", One(Str)),
    (10, "initContainerStatuses", List(Msg(CONTAINER_STATUS))),
    (11, "nominatedNodeName", One(Str)),
    (12, "podIPs", List(Msg(POD_IP))),
    (
        13,
        "ephemeralContainerStatuses",
        List(Msg(CONTAINER_STATUS)),
    ),
    (14, "resize", One(Str)),
    (
        15,
        "resourceClaimStatuses",
        List(Msg(POD_RESOURCE_CLAIM_STATUS)),
    ),
    (16, "hostIPs", List(Msg(HOST_IP))),
];
/// `PodCondition`.
pub(super) const POD_CONDITION: &[Field] = &[
    (1, "type", One(Str)),
    (2, "status", One(Str)),
    (3, "lastProbeTime", One(Time)),
    (4, "lastTransitionTime", One(Time)),
    (5, "reason", One(Str)),
    (6, "message", One(Str)),
];
/// `HostIP`.
pub(super) const HOST_IP: &[Field] = &[(1, "ip", One(Str))];
/// `PodIP`.
pub(super) const POD_IP: &[Field] = &[(1, "ip", One(Str))];
/// `ContainerStatus`.
pub(super) const CONTAINER_STATUS: &[Field] = &[
    (1, "name", One(Str)),
    (2, "state", One(Msg(CONTAINER_STATE))),
    (3, "lastState", One(Msg(CONTAINER_STATE))),
    (4, "ready", One(Bool)),
    (5, "restartCount", One(Int32)),
    (6, "image", One(Str)),
    (7, "imageID", One(Str)),
    (8, "containerID", One(Str)),
    (9, "started", Ptr(Bool)),
    (10, "allocatedResources", Map(Quantity)),
    (11, "resources", Ptr(Msg(RESOURCE_REQUIREMENTS))),
    (12, "volumeMounts", List(Msg(VOLUME_MOUNT_STATUS))),
    (13, "user", Ptr(Msg(CONTAINER_USER))),
    (14, "allocatedResourcesStatus", List(Msg(RESOURCE_STATUS))),
];
/// `ContainerState`.
pub(super) const CONTAINER_STATE: &[Field] = &[
    (1, "waiting", Ptr(Msg(CONTAINER_STATE_WAITING))),
    (2, "running", Ptr(Msg(CONTAINER_STATE_RUNNING))),
    (3, "terminated", Ptr(Msg(CONTAINER_STATE_TERMINATED))),
];
/// `ContainerStateWaiting`.
pub(super) const CONTAINER_STATE_WAITING: &[Field] =
    &[(1, "reason", One(Str)), (2, "message", One(Str))];
/// `ContainerStateRunning`.
pub(super) const CONTAINER_STATE_RUNNING: &[Field] = &[(1, "startedAt", One(Time))];
/// `ContainerStateTerminated`.
pub(super) const CONTAINER_STATE_TERMINATED: &[Field] = &[
    (1, "exitCode", One(Int32)),
    (2, "signal", One(Int32)),
    (3, "reason", One(Str)),
    (4, "message", One(Str)),
    (5, "startedAt", One(Time)),
    (6, "finishedAt", One(Time)),
    (7, "containerID", One(Str)),
];
/// `VolumeMountStatus`.
pub(super) const VOLUME_MOUNT_STATUS: &[Field] = &[
    (1, "name", One(Str)),
    (2, "mountPath", One(Str)),
    (3, "readOnly", One(Bool)),
    (4, "recursiveReadOnly", Ptr(Str)),
];
/// `ContainerUser`.
pub(super) const CONTAINER_USER: &[Field] = &[(1, "linux", Ptr(Msg(LINUX_CONTAINER_USER)))];
/// `LinuxContainerUser`.
pub(super) const LINUX_CONTAINER_USER: &[Field] = &[
    (1, "uid", One(Int64)),
    (2, "gid", One(Int64)),
    (3, "supplementalGroups", List(Int64)),
];
/// `ResourceStatus`.
pub(super) const RESOURCE_STATUS: &[Field] = &[
    (1, "name", One(Str)),
    (2, "resources", List(Msg(RESOURCE_HEALTH))),
];
/// `ResourceHealth`.
pub(super) const RESOURCE_HEALTH: &[Field] =
    &[(1, "resourceID", One(Str)), (2, "health", One(Str))];
/// `PodResourceClaimStatus`.
pub(super) const POD_RESOURCE_CLAIM_STATUS: &[Field] =
    &[(1, "name", One(Str)), (2, "resourceClaimName", Ptr(Str))];
/// `Node`.
pub(super) const NODE: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "spec", One(Msg(NODE_SPEC))),
    (3, "status", One(Msg(NODE_STATUS))),
];
/// `NodeSpec`.
pub(super) const NODE_SPEC: &[Field] = &[
    (1, "podCIDR", One(Str)),
    (2, "externalID", One(Str)),
    (3, "providerID", One(Str)),
    (4, "unschedulable", One(Bool)),
    (5, "taints", List(Msg(TAINT))),
    (6, "configSource", Ptr(Msg(NODE_CONFIG_SOURCE))),
    (7, "podCIDRs", List(Str)),
];
/// `Taint`.
pub(super) const TAINT: &[Field] = &[
    (1, "key", One(Str)),
    (2, "value", One(Str)),
    (3, "effect", One(Str)),
    (4, "timeAdded", Ptr(Time)),
];
/// `NodeConfigSource`.
pub(super) const NODE_CONFIG_SOURCE: &[Field] =
    &[(2, "configMap", Ptr(Msg(CONFIG_MAP_NODE_CONFIG_SOURCE)))];
/// `ConfigMapNodeConfigSource`.
pub(super) const CONFIG_MAP_NODE_CONFIG_SOURCE: &[Field] = &[
    (1, "namespace", One(Str)),
    (2, "name", One(Str)),
    (3, "uid", One(Str)),
    (4, "resourceVersion", One(Str)),
    (5, "kubeletConfigKey", One(Str)),
];
/// `NodeStatus`.
pub(super) const NODE_STATUS: &[Field] = &[
    (1, "capacity", Map(Quantity)),
    (2, "allocatable", Map(Quantity)),
    (3, "phase", One(Str)),
    (4, "conditions", List(Msg(NODE_CONDITION))),
    (5, "addresses", List(Msg(NODE_ADDRESS))),
    (6, "daemonEndpoints", One(Msg(NODE_DAEMON_ENDPOINTS))),
    (7, "nodeInfo", One(Msg(NODE_SYSTEM_INFO))),
    (8, "images", List(Msg(CONTAINER_IMAGE))),
    (9, "volumesInUse", List(Str)),
    (10, "volumesAttached", List(Msg(ATTACHED_VOLUME))),
    (11, "config", Ptr(Msg(NODE_CONFIG_STATUS))),
    (12, "runtimeHandlers", List(Msg(NODE_RUNTIME_HANDLER))),
    (13, "features", Ptr(Msg(NODE_FEATURES))),
];
/// `NodeCondition`.
pub(super) const NODE_CONDITION: &[Field] = &[
    (1, "type", One(Str)),
    (2, "status", One(Str)),
    (3, "lastHeartbeatTime", One(Time)),
    (4, "lastTransitionTime", One(Time)),
    (5, "reason", One(Str)),
    (6, "message", One(Str)),
];
/// `NodeAddress`.
pub(super) const NODE_ADDRESS: &[Field] = &[(1, "type", One(Str)), (2, "address", One(Str))];
/// `NodeDaemonEndpoints`.
pub(super) const NODE_DAEMON_ENDPOINTS: &[Field] =
    &[(1, "kubeletEndpoint", One(Msg(DAEMON_ENDPOINT)))];
/// `DaemonEndpoint`.
pub(super) const DAEMON_ENDPOINT: &[Field] = &[(1, "Port", One(Int32))];
/// `NodeSystemInfo`.
pub(super) const NODE_SYSTEM_INFO: &[Field] = &[
    (1, "machineID", One(Str)),
    (2, "systemUUID", One(Str)),
    (3, "bootID", One(Str)),
    (4, "kernelVersion", One(Str)),
    (5, "osImage", One(Str)),
    (6, "containerRuntimeVersion", One(Str)),
    (7, "kubeletVersion", One(Str)),
    (8, "kubeProxyVersion", One(Str)),
    (9, "operatingSystem", One(Str)),
    (10, "architecture", One(Str)),
];
/// `ContainerImage`.
pub(super) const CONTAINER_IMAGE: &[Field] =
    &[(1, "names", List(Str)), (2, "sizeBytes", One(Int64))];
/// `AttachedVolume`.
pub(super) const ATTACHED_VOLUME: &[Field] = &[(1, "name", One(Str)), (2, "devicePath", One(Str))];
/// `NodeConfigStatus`.
pub(super) const NODE_CONFIG_STATUS: &[Field] = &[
    (1, "assigned", Ptr(Msg(NODE_CONFIG_SOURCE))),
    (2, "active", Ptr(Msg(NODE_CONFIG_SOURCE))),
    (3, "lastKnownGood", Ptr(Msg(NODE_CONFIG_SOURCE))),
    (4, "error", One(Str)),
];
/// `NodeRuntimeHandler`.
pub(super) const NODE_RUNTIME_HANDLER: &[Field] = &[
    (1, "name", One(Str)),
    (2, "features", Ptr(Msg(NODE_RUNTIME_HANDLER_FEATURES))),
];
/// `NodeRuntimeHandlerFeatures`.
pub(super) const NODE_RUNTIME_HANDLER_FEATURES: &[Field] = &[
    (1, "recursiveReadOnlyMounts", Ptr(Bool)),
    (2, "userNamespaces", Ptr(Bool)),
];
/// `NodeFeatures`.
pub(super) const NODE_FEATURES: &[Field] = &[(1, "supplementalGroupsPolicy", Ptr(Bool))];
/// `Service`.
pub(super) const SERVICE: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "spec", One(Msg(SERVICE_SPEC))),
    (3, "status", One(Msg(SERVICE_STATUS))),
];
/// `ServiceSpec`.
pub(super) const SERVICE_SPEC: &[Field] = &[
    (1, "ports", List(Msg(SERVICE_PORT))),
    (2, "selector", Map(Str)),
    (3, "clusterIP", One(Str)),
    (4, "type", One(Str)),
    (5, "externalIPs", List(Str)),
    (7, "sessionAffinity", One(Str)),
    (8, "loadBalancerIP", One(Str)),
    (9, "loadBalancerSourceRanges", List(Str)),
    (10, "externalName", One(Str)),
    (11, "externalTrafficPolicy", One(Str)),
    (12, "healthCheckNodePort", One(Int32)),
    (13, "publishNotReadyAddresses", One(Bool)),
    (
        14,
        "sessionAffinityConfig",
        Ptr(Msg(SESSION_AFFINITY_CONFIG)),
    ),
    (17, "ipFamilyPolicy", Ptr(Str)),
    (18, "clusterIPs", List(Str)),
    (19, "ipFamilies", List(Str)),
    (20, "allocateLoadBalancerNodePorts", Ptr(Bool)),
    (21, "loadBalancerClass", Ptr(Str)),
    (22, "internalTrafficPolicy", Ptr(Str)),
    (23, "trafficDistribution", Ptr(Str)),
];
/// `ServicePort`.
pub(super) const SERVICE_PORT: &[Field] = &[
    (1, "name", One(Str)),
    (2, "protocol", One(Str)),
    (3, "port", One(Int32)),
    (4, "targetPort", One(IntOrString)),
    (5, "nodePort", One(Int32)),
    (6, "appProtocol", Ptr(Str)),
];
/// `SessionAffinityConfig`.
pub(super) const SESSION_AFFINITY_CONFIG: &[Field] = &[(1, "clientIP", Ptr(Msg(CLIENT_IP_CONFIG)))];
/// `ClientIPConfig`.
pub(super) const CLIENT_IP_CONFIG: &[Field] = &[(1, "timeoutSeconds", Ptr(Int32))];
/// `ServiceStatus`.
pub(super) const SERVICE_STATUS: &[Field] = &[
    (1, "loadBalancer", One(Msg(LOAD_BALANCER_STATUS))),
    (2, "conditions", List(Msg(meta::CONDITION))),
];
/// `LoadBalancerStatus`.
pub(super) const LOAD_BALANCER_STATUS: &[Field] =
    &[(1, "ingress", List(Msg(LOAD_BALANCER_INGRESS)))];
/// `LoadBalancerIngress`.
pub(super) const LOAD_BALANCER_INGRESS: &[Field] = &[
    (1, "ip", One(Str)),
    (2, "hostname", One(Str)),
    (3, "ipMode", Ptr(Str)),
    (4, "ports", List(Msg(PORT_STATUS))),
];
/// `PortStatus`.
pub(super) const PORT_STATUS: &[Field] = &[
    (1, "port", One(Int32)),
    (2, "protocol", One(Str)),
    (3, "error", Ptr(Str)),
];
/// `Endpoints`.
pub(super) const ENDPOINTS: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "subsets", List(Msg(ENDPOINT_SUBSET))),
];
/// `EndpointSubset`.
pub(super) const ENDPOINT_SUBSET: &[Field] = &[
    (1, "addresses", List(Msg(ENDPOINT_ADDRESS))),
    (2, "notReadyAddresses", List(Msg(ENDPOINT_ADDRESS))),
    (3, "ports", List(Msg(ENDPOINT_PORT))),
];
/// `EndpointAddress`.
pub(super) const ENDPOINT_ADDRESS: &[Field] = &[
    (1, "ip", One(Str)),
    (2, "targetRef", Ptr(Msg(OBJECT_REFERENCE))),
    (3, "hostname", One(Str)),
    (4, "nodeName", Ptr(Str)),
];
/// `ObjectReference`.
pub(super) const OBJECT_REFERENCE: &[Field] = &[
    (1, "kind", One(Str)),
    (2, "namespace", One(Str)),
    (3, "name", One(Str)),
    (4, "uid", One(Str)),
    (5, "apiVersion", One(Str)),
    (6, "resourceVersion", One(Str)),
    (7, "fieldPath", One(Str)),
];
/// `EndpointPort`.
pub(super) const ENDPOINT_PORT: &[Field] = &[
    (1, "name", One(Str)),
    (2, "port", One(Int32)),
    (3, "protocol", One(Str)),
    (4, "appProtocol", Ptr(Str)),
];
/// `ConfigMap`.
pub(super) const CONFIG_MAP: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "data", Map(Str)),
    (3, "binaryData", Map(Bytes)),
    (4, "immutable", Ptr(Bool)),
];
/// `Secret`.
pub(super) const SECRET: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "data", Map(Bytes)),
    (3, "type", One(Str)),
    (4, "stringData", Map(Str)),
    (5, "immutable", Ptr(Bool)),
];
/// `Event`.
pub(super) const EVENT: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "involvedObject", One(Msg(OBJECT_REFERENCE))),
    (3, "reason", One(Str)),
    (4, "message", One(Str)),
    (5, "source", One(Msg(EVENT_SOURCE))),
    (6, "firstTimestamp", One(Time)),
    (7, "lastTimestamp", One(Time)),
    (8, "count", One(Int32)),
    (9, "type", One(Str)),
    (10, "eventTime", One(MicroTime)),
    (11, "series", Ptr(Msg(EVENT_SERIES))),
    (12, "action", One(Str)),
    (13, "related", Ptr(Msg(OBJECT_REFERENCE))),
    (14, "reportingComponent", One(Str)),
    (15, "reportingInstance", One(Str)),
];
/// `EventSource`.
pub(super) const EVENT_SOURCE: &[Field] = &[(1, "component", One(Str)), (2, "host", One(Str))];
/// `EventSeries`.
pub(super) const EVENT_SERIES: &[Field] = &[
    (1, "count", One(Int32)),
    (2, "lastObservedTime", One(MicroTime)),
];
/// `PodTemplateSpec`.
pub(super) const POD_TEMPLATE_SPEC: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "spec", One(Msg(POD_SPEC))),
];
