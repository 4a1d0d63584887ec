//! Schema tables of `k8s.io/api/apps/v1` (Deployment), from Kubernetes
//! v1.32's `generated.proto` (k8s.io/api v0.32.13); `Ptr` where the Go
//! field is a pointer.

use super::{F::*, Field, Shape::*, core, meta};

/// `Deployment`.
pub(super) const DEPLOYMENT: &[Field] = &[
    (1, "metadata", One(Msg(meta::OBJECT_META))),
    (2, "spec", One(Msg(DEPLOYMENT_SPEC))),
    (3, "status", One(Msg(DEPLOYMENT_STATUS))),
];
/// `DeploymentSpec`.
pub(super) const DEPLOYMENT_SPEC: &[Field] = &[
    (1, "replicas", Ptr(Int32)),
    (2, "selector", Ptr(Msg(meta::LABEL_SELECTOR))),
    (3, "template", One(Msg(core::POD_TEMPLATE_SPEC))),
    (4, "strategy", One(Msg(DEPLOYMENT_STRATEGY))),
    (5, "minReadySeconds", One(Int32)),
    (6, "revisionHistoryLimit", Ptr(Int32)),
    (7, "paused", One(Bool)),
    (9, "progressDeadlineSeconds", Ptr(Int32)),
];
/// `DeploymentStrategy`.
pub(super) const DEPLOYMENT_STRATEGY: &[Field] = &[
    (1, "type", One(Str)),
    (2, "rollingUpdate", Ptr(Msg(ROLLING_UPDATE_DEPLOYMENT))),
];
/// `RollingUpdateDeployment`.
pub(super) const ROLLING_UPDATE_DEPLOYMENT: &[Field] = &[
    (1, "maxUnavailable", Ptr(IntOrString)),
    (2, "maxSurge", Ptr(IntOrString)),
];
/// `DeploymentStatus`.
pub(super) const DEPLOYMENT_STATUS: &[Field] = &[
    (1, "observedGeneration", One(Int64)),
    (2, "replicas", One(Int32)),
    (3, "updatedReplicas", One(Int32)),
    (4, "availableReplicas", One(Int32)),
    (5, "unavailableReplicas", One(Int32)),
    (6, "conditions", List(Msg(DEPLOYMENT_CONDITION))),
    (7, "readyReplicas", One(Int32)),
    (8, "collisionCount", Ptr(Int32)),
];
/// `DeploymentCondition`.
pub(super) const DEPLOYMENT_CONDITION: &[Field] = &[
    (1, "type", One(Str)),
    (2, "status", One(Str)),
    (4, "reason", One(Str)),
    (5, "message", One(Str)),
    (6, "lastUpdateTime", One(Time)),
    (7, "lastTransitionTime", One(Time)),
];
