//! `Event` (core `v1`): a report that something happened to an object (a pod
//! was scheduled, an image pulled, a probe failed), written by the
//! scheduler, the controllers and the agents, read by `kubectl get events`
//! and `describe`. The shape is Kubernetes' `core/v1` Event; repeats of the
//! same event are folded into one object by the recorder
//! ([`crate::client::events`]), which raises `count` and `lastTimestamp`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    kinds::endpoints::ObjectReference,
    primitives::validate::{self, Errors, FieldError},
    resource::{
        ObjectMeta, Resource,
        meta::{Time, short_age},
    },
};
use std::time::SystemTime;

/// `type` of an event that is routine.
pub const NORMAL: &str = "Normal";
/// `type` of an event that is worth a look.
pub const WARNING: &str = "Warning";

/// The longest `message` keel stores; Kubernetes' recorder truncates at 1 KiB too.
pub const MAX_MESSAGE_BYTES: usize = 1024;
/// The longest `reason` (Kubernetes' events.k8s.io validation).
pub const MAX_REASON_BYTES: usize = 128;

/// An Event: a report of something that happened to an object (`Scheduled`,
/// `Pulled`, `BackOff` …), written by keel-control and the agents; repeats are
/// aggregated into one event with a count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Event {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The object the event is about.
    #[serde(default)]
    pub involved_object: ObjectReference,
    /// A short CamelCase word for what happened (`Scheduled`, `Pulled`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What happened, for a human.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The component (and node) that reported it.
    #[serde(default)]
    pub source: EventSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<Time>,
    /// How many times this event happened (aggregated repeats).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    /// `Normal` or `Warning`.
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<EventSeries>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectReference>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// Who reported the event: a component (`default-scheduler`, `kubelet`)
/// and the node it runs on.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventSeries {
    #[serde(default)]
    pub count: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_time: Option<Time>,
}

impl Event {
    /// When the event last happened: `lastTimestamp`, else the series' last
    /// observation, else `eventTime`, else the creation time (kubectl's order).
    pub fn last_seen(&self) -> Option<Time> {
        self.last_timestamp
            .or_else(|| self.series.as_ref().and_then(|s| s.last_observed_time))
            .or(self.event_time)
            .or(self.metadata.creation_timestamp)
    }

    /// When the event first happened.
    pub fn first_seen(&self) -> Option<Time> {
        self.first_timestamp
            .or(self.event_time)
            .or(self.metadata.creation_timestamp)
    }

    /// Who reported it, as kubectl's describe prints it (`kubelet`,
    /// `default-scheduler`): the source's component, else the reporting one.
    pub fn from(&self) -> &str {
        if self.source.component.is_empty() {
            &self.reporting_component
        } else {
            &self.source.component
        }
    }
}

/// The columns `kubectl get events` prints (Kubernetes' event printer),
/// shared by keel-control's Table and keelctl.
impl Event {
    /// LAST SEEN: the age of the last occurrence, with `(xN over AGE)` when
    /// the event repeated.
    pub fn last_seen_column(&self, now: SystemTime) -> String {
        let since = |t: Option<Time>| {
            t.map_or_else(
                || "<unknown>".to_string(),
                |t| short_age(now.duration_since(t.0).unwrap_or_default()),
            )
        };
        let last = since(self.last_seen());
        match &self.series {
            Some(s) => format!("{last} (x{} over {})", s.count, since(self.first_seen())),
            None if self.count > 1 => {
                format!("{last} (x{} over {})", self.count, since(self.first_seen()))
            }
            None => last,
        }
    }

    /// OBJECT: `pod/web-1`.
    pub fn object_column(&self) -> String {
        format!(
            "{}/{}",
            self.involved_object.kind.to_lowercase(),
            self.involved_object.name
        )
    }

    /// SOURCE (wide): `kubelet, node-1`.
    pub fn source_column(&self) -> String {
        let from = self.from();
        let host = if self.source.host.is_empty() {
            &self.reporting_instance
        } else {
            &self.source.host
        };
        if host.is_empty() {
            from.to_string()
        } else {
            format!("{from}, {host}")
        }
    }
}

impl Resource for Event {
    const KIND: &'static str = "Event";
    const API_VERSION: &'static str = "v1";
    const PLURAL: &'static str = "events";
    const NAMESPACED: bool = true;
    const EXTRA_FIELDS: &'static [&'static str] = &[
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ];

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    /// An Event has no spec: every write is a change of its content, which
    /// is what `generation` counts for other kinds; events leave it alone.
    fn spec_eq(&self, _other: &Self) -> bool {
        true
    }
    fn copy_status(&mut self, _from: &Self) {}
    fn set_type_meta(&mut self) {
        self.api_version = Self::API_VERSION.into();
        self.kind = Self::KIND.into();
    }

    fn field(&self, path: &str) -> Option<String> {
        let o = &self.involved_object;
        Some(match path {
            "metadata.name" => self.metadata.name.clone(),
            "metadata.namespace" => self.metadata.namespace.clone(),
            "involvedObject.kind" => o.kind.clone(),
            "involvedObject.namespace" => o.namespace.clone(),
            "involvedObject.name" => o.name.clone(),
            "involvedObject.uid" => o.uid.clone(),
            "involvedObject.apiVersion" => o.api_version.clone(),
            "involvedObject.resourceVersion" => o.resource_version.clone(),
            "involvedObject.fieldPath" => o.field_path.clone(),
            "reason" => self.reason.clone(),
            "reportingComponent" => self.reporting_component.clone(),
            "source" => self.source.component.clone(),
            "type" => self.type_.clone(),
            _ => return None,
        })
    }

    /// Kubernetes' `ValidateEventCreate` for `core/v1`: the involved object
    /// is named, lives in the event's namespace (a cluster-scoped one's
    /// events go to `default`), `type` is Normal or Warning, and reason and
    /// message are bounded.
    fn validate(&self) -> Vec<FieldError> {
        let mut errs = Errors::new();
        crate::resource::validate_common(self, &self.api_version, &self.kind, &mut errs);
        crate::kinds::config_map::validate_name(&self.metadata, &mut errs);
        let o = &self.involved_object;
        if o.kind.is_empty() {
            errs.add("involvedObject.kind", "Required value");
        }
        if o.name.is_empty() {
            errs.add("involvedObject.name", "Required value");
        }
        let ns = &self.metadata.namespace;
        if o.namespace.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.add(
                    "involvedObject.namespace",
                    format!(
                        "does not match event.namespace {ns:?}: events about cluster-scoped objects belong in \"default\""
                    ),
                );
            }
        } else if !ns.is_empty() && *ns != o.namespace {
            errs.add(
                "involvedObject.namespace",
                format!("{:?} does not match event.namespace {ns:?}", o.namespace),
            );
        }
        if !self.type_.is_empty() && self.type_ != NORMAL && self.type_ != WARNING {
            errs.add(
                "type",
                format!(
                    "Unsupported value: {:?}: supported values: \"Normal\", \"Warning\"",
                    self.type_
                ),
            );
        }
        if self.reason.len() > MAX_REASON_BYTES {
            errs.add(
                "reason",
                format!("must have at most {MAX_REASON_BYTES} bytes"),
            );
        }
        if self.message.len() > MAX_MESSAGE_BYTES {
            errs.add(
                "message",
                format!("must have at most {MAX_MESSAGE_BYTES} bytes"),
            );
        }
        if self.count < 0 {
            errs.add("count", "must be greater than or equal to 0");
        }
        if !self.source.host.is_empty() {
            errs.check(
                "source.host",
                validate::dns1123_subdomain(&self.source.host),
            );
        }
        errs.0
    }
}

/// Cuts `message` to at most [`MAX_MESSAGE_BYTES`] on a character boundary.
pub fn truncate_message(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES - 3;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &message[..end])
}

#[cfg(test)]
mod tests;
