//! `Deployment`: keeps `replicas` pods from a template running, replacing
//! deleted or lost ones and rolling to a new template.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::pod::{self, PodSpec, RestartPolicy};
use crate::{
    primitives::{
        IntOrString,
        selector::LabelSelector,
        validate::{self, Errors, FieldError},
    },
    resource::{ObjectMeta, Resource, Time},
};

/// A Deployment: keeps `replicas` pods of one template running and rolls them
/// to a changed template step by step, keeping earlier templates for `kubectl
/// rollout undo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Deployment {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The pods the Deployment should run and how it replaces them.
    #[serde(default)]
    pub spec: DeploymentSpec,
    /// What the Deployment controller last observed: replica counts and
    /// conditions.
    #[serde(default)]
    pub status: DeploymentStatus,
}

crate::preserved_fields!(
    /// `spec` fields of a Deployment keel keeps without acting on them.
    DeploymentSpecFields,
    "a Deployment's spec",
    ["progressDeadlineSeconds", "minReadySeconds"]
);

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSpec {
    /// How many pods of the template to run. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    /// The labels of the Deployment's pods; must match the template's labels.
    #[serde(default)]
    pub selector: LabelSelector,
    /// The pods to run: metadata and spec each pod is made from.
    #[serde(default)]
    pub template: PodTemplateSpec,
    /// How pods of an old template are replaced: `RollingUpdate` (the default)
    /// or `Recreate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<DeploymentStrategy>,
    /// Old templates kept for `kubectl rollout undo` (Kubernetes' default:
    /// 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
    /// A paused Deployment does not roll to a changed template; it still
    /// scales and replaces lost pods, as Kubernetes' ReplicaSets do.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Kubernetes' fields keel keeps without acting on them.
    #[serde(flatten)]
    pub preserved: DeploymentSpecFields,
}

/// A pod to make: its metadata (labels the selector matches) and spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodTemplateSpec {
    /// Labels and annotations each pod gets.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The spec each pod gets.
    #[serde(default)]
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentStrategy {
    /// RollingUpdate (default) or Recreate.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdate>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollingUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_surge: Option<IntOrString>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentStatus {
    #[serde(default)]
    pub observed_generation: u64,
    #[serde(default)]
    pub replicas: i64,
    #[serde(default)]
    pub updated_replicas: i64,
    #[serde(default)]
    pub ready_replicas: i64,
    #[serde(default)]
    pub available_replicas: i64,
    #[serde(default)]
    pub unavailable_replicas: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<DeploymentCondition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}

impl Deployment {
    pub fn replicas(&self) -> i64 {
        self.spec.replicas.unwrap_or(1)
    }

    /// Old revisions to keep besides the current one.
    pub fn revision_history_limit(&self) -> usize {
        self.spec.revision_history_limit.unwrap_or(10).max(0) as usize
    }

    pub fn is_recreate(&self) -> bool {
        self.spec
            .strategy
            .as_ref()
            .is_some_and(|s| s.type_ == "Recreate")
    }

    /// (maxSurge, maxUnavailable) resolved against replicas, as Kubernetes
    /// does: 25% each by default, surge rounded up, unavailable rounded down,
    /// and never both zero.
    pub fn rollout_bounds(&self) -> (i64, i64) {
        let r = self.replicas();
        let ru = self
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.rolling_update.as_ref());
        let resolve = |v: Option<&IntOrString>, up: bool| -> i64 {
            match v {
                Some(IntOrString::Int(n)) => *n,
                Some(IntOrString::String(s)) => {
                    let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
                    if up {
                        (r * pct + 99) / 100
                    } else {
                        r * pct / 100
                    }
                }
                None => {
                    if up {
                        (r * 25 + 99) / 100
                    } else {
                        r * 25 / 100
                    }
                }
            }
        };
        let surge = resolve(ru.and_then(|r| r.max_surge.as_ref()), true);
        let unavailable = resolve(ru.and_then(|r| r.max_unavailable.as_ref()), false);
        if surge == 0 && unavailable == 0 {
            (1, 0)
        } else {
            (surge, unavailable)
        }
    }
}

fn percent_or_int(v: &IntOrString) -> Result<(), String> {
    match v {
        IntOrString::Int(n) if *n >= 0 => Ok(()),
        IntOrString::Int(n) => Err(format!("{n} must be non-negative")),
        IntOrString::String(s) => match s.strip_suffix('%').and_then(|p| p.parse::<u32>().ok()) {
            Some(p) if p <= 100 => Ok(()),
            _ => Err(format!(
                "{s:?} must be a number or a percentage from 0% to 100%"
            )),
        },
    }
}

impl Resource for Deployment {
    const KIND: &'static str = "Deployment";
    const API_VERSION: &'static str = "apps/v1";
    const PLURAL: &'static str = "deployments";
    const NAMESPACED: bool = true;

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
        let spec = &self.spec;
        if let Some(r) = spec.replicas
            && r < 0
        {
            errs.add("spec.replicas", format!("{r} must be non-negative"));
        }
        if let Some(l) = spec.revision_history_limit
            && l < 0
        {
            errs.add(
                "spec.revisionHistoryLimit",
                format!("{l} must be greater than or equal to 0"),
            );
        }
        if spec.selector.is_empty() {
            errs.add(
                "spec.selector",
                "required (matchLabels or matchExpressions)",
            );
        }
        for (k, v) in &spec.selector.match_labels {
            errs.check(
                format!("spec.selector.matchLabels[{k}]"),
                validate::label_key(k),
            );
            errs.check(
                format!("spec.selector.matchLabels[{k}]"),
                validate::label_value(v),
            );
        }
        for (i, e) in spec.selector.match_expressions.iter().enumerate() {
            errs.check(
                format!("spec.selector.matchExpressions[{i}].key"),
                validate::label_key(&e.key),
            );
            use crate::primitives::selector::SelectorOperator::*;
            match e.operator {
                In | NotIn if e.values.is_empty() => errs.add(
                    format!("spec.selector.matchExpressions[{i}].values"),
                    "required for In and NotIn",
                ),
                Exists | DoesNotExist if !e.values.is_empty() => errs.add(
                    format!("spec.selector.matchExpressions[{i}].values"),
                    "must be empty for Exists and DoesNotExist",
                ),
                _ => {}
            }
        }
        let tmeta = &spec.template.metadata;
        for (k, v) in &tmeta.labels {
            errs.check(
                format!("spec.template.metadata.labels[{k}]"),
                validate::label_key(k),
            );
            errs.check(
                format!("spec.template.metadata.labels[{k}]"),
                validate::label_value(v),
            );
        }
        if !spec.selector.is_empty() && !spec.selector.to_selector().matches(&tmeta.labels) {
            errs.add("spec.template.metadata.labels", "must match spec.selector");
        }
        if spec.template.spec.restart_policy != RestartPolicy::Always {
            errs.add(
                "spec.template.spec.restartPolicy",
                "must be Always for a Deployment",
            );
        }
        if !spec.template.spec.node_name.is_empty() {
            errs.add(
                "spec.template.spec.nodeName",
                "may not be set in a Deployment's template (use nodeSelector)",
            );
        }
        pod::validate_spec(&spec.template.spec, "spec.template.spec", &mut errs);
        if let Some(s) = &spec.strategy {
            if !matches!(s.type_.as_str(), "" | "RollingUpdate" | "Recreate") {
                errs.add(
                    "spec.strategy.type",
                    format!("{:?} is not RollingUpdate or Recreate", s.type_),
                );
            }
            if let Some(ru) = &s.rolling_update {
                if s.type_ == "Recreate" {
                    errs.add(
                        "spec.strategy.rollingUpdate",
                        "may not be set when type is Recreate",
                    );
                }
                if let Some(v) = &ru.max_surge {
                    errs.check("spec.strategy.rollingUpdate.maxSurge", percent_or_int(v));
                }
                if let Some(v) = &ru.max_unavailable {
                    errs.check(
                        "spec.strategy.rollingUpdate.maxUnavailable",
                        percent_or_int(v),
                    );
                }
            }
        }
        errs.0
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        if self.spec.selector != old.spec.selector {
            errs.add("spec.selector", "is immutable");
        }
        errs.0
    }
}
