//! Schema tables of `k8s.io/apimachinery/pkg/apis/meta/v1` (the messages
//! the served kinds use), from Kubernetes v1.32's `generated.proto`
//! (apimachinery v0.32.13); `Ptr` where the Go field is a pointer.

use super::{F::*, Field, Shape::*};

/// `ObjectMeta`.
pub(super) const OBJECT_META: &[Field] = &[
    (1, "name", One(Str)),
    (2, "generateName", One(Str)),
    (3, "namespace", One(Str)),
    (4, "selfLink", One(Str)),
    (5, "uid", One(Str)),
    (6, "resourceVersion", One(Str)),
    (7, "generation", One(Int64)),
    (8, "creationTimestamp", One(Time)),
    (9, "deletionTimestamp", Ptr(Time)),
    (10, "deletionGracePeriodSeconds", Ptr(Int64)),
    (11, "labels", Map(Str)),
    (12, "annotations", Map(Str)),
    (13, "ownerReferences", List(Msg(OWNER_REFERENCE))),
    (14, "finalizers", List(Str)),
    (17, "managedFields", Ignored),
];
/// `OwnerReference`.
pub(super) const OWNER_REFERENCE: &[Field] = &[
    (1, "kind", One(Str)),
    (3, "name", One(Str)),
    (4, "uid", One(Str)),
    (5, "apiVersion", One(Str)),
    (6, "controller", Ptr(Bool)),
    (7, "blockOwnerDeletion", Ptr(Bool)),
];
/// `LabelSelector`.
pub(super) const LABEL_SELECTOR: &[Field] = &[
    (1, "matchLabels", Map(Str)),
    (2, "matchExpressions", List(Msg(LABEL_SELECTOR_REQUIREMENT))),
];
/// `LabelSelectorRequirement`.
pub(super) const LABEL_SELECTOR_REQUIREMENT: &[Field] = &[
    (1, "key", One(Str)),
    (2, "operator", One(Str)),
    (3, "values", List(Str)),
];
/// `Condition`.
pub(super) const CONDITION: &[Field] = &[
    (1, "type", One(Str)),
    (2, "status", One(Str)),
    (3, "observedGeneration", One(Int64)),
    (4, "lastTransitionTime", One(Time)),
    (5, "reason", One(Str)),
    (6, "message", One(Str)),
];
