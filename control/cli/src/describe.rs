//! `keelctl describe`: one object, in readable sections.

use std::fmt::Write;

use std::time::SystemTime;

use keel_api::{AnyObject, Event, ObjectMeta, Resource};

fn meta(out: &mut String, m: &ObjectMeta, namespaced: bool) {
    let _ = writeln!(out, "Name:         {}", m.name);
    if namespaced {
        let _ = writeln!(out, "Namespace:    {}", m.namespace);
    }
    let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let _ = writeln!(
        out,
        "Labels:       {}",
        if labels.is_empty() {
            "<none>".into()
        } else {
            labels.join("\n              ")
        }
    );
    if let Some(t) = m.creation_timestamp {
        let _ = writeln!(out, "Created:      {t}");
    }
    let _ = writeln!(out, "UID:          {}", m.uid);
    if let Some(o) = m.owner_references.iter().find(|o| o.controller) {
        let _ = writeln!(out, "Controlled By:  {}/{}", o.kind, o.name);
    }
}

pub fn describe(obj: &AnyObject) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Kind:         {}", obj.kind());
    meta(&mut out, obj.meta(), obj.kind().namespaced());
    match obj {
        AnyObject::Node(n) => {
            let _ = writeln!(out, "PodCIDR:      {}", n.spec.pod_cidr);
            let _ = writeln!(out, "Unschedulable: {}", n.spec.unschedulable);
            let _ = writeln!(out, "Addresses:");
            for a in &n.status.addresses {
                let _ = writeln!(out, "  {}: {}", a.type_, a.address);
            }
            let _ = writeln!(out, "Capacity:");
            for (k, v) in &n.status.capacity {
                let _ = writeln!(out, "  {k}: {v}");
            }
            let _ = writeln!(
                out,
                "Conditions:\n  TYPE    STATUS   LAST HEARTBEAT         REASON   MESSAGE"
            );
            for c in &n.status.conditions {
                let hb = c
                    .last_heartbeat_time
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  {}   {}   {hb}   {}   {}",
                    c.type_, c.status, c.reason, c.message
                );
            }
        }
        AnyObject::Pod(p) => {
            let _ = writeln!(
                out,
                "Node:         {}",
                if p.spec.node_name.is_empty() {
                    "<none>"
                } else {
                    &p.spec.node_name
                }
            );
            let _ = writeln!(out, "Status:       {}", crate::get::pod_status(p));
            let _ = writeln!(
                out,
                "IP:           {}",
                if p.status.pod_ip.is_empty() {
                    "<none>"
                } else {
                    &p.status.pod_ip
                }
            );
            let _ = writeln!(out, "Containers:");
            for c in &p.spec.containers {
                let _ = writeln!(out, "  {}:\n    Image:      {}", c.name, c.image);
                if !c.command.is_empty() {
                    let _ = writeln!(out, "    Command:    {}", c.command.join(" "));
                }
                if let Some(cs) = p
                    .status
                    .container_statuses
                    .iter()
                    .find(|s| s.name == c.name)
                {
                    let state = if let Some(r) = &cs.state.running {
                        format!(
                            "Running (since {})",
                            r.started_at.map(|t| t.to_string()).unwrap_or_default()
                        )
                    } else if let Some(w) = &cs.state.waiting {
                        format!("Waiting ({}) {}", w.reason, w.message)
                    } else if let Some(t) = &cs.state.terminated {
                        format!(
                            "Terminated ({}, exit code {}) {}",
                            t.reason, t.exit_code, t.message
                        )
                    } else {
                        "Unknown".into()
                    };
                    let _ = writeln!(
                        out,
                        "    State:      {state}\n    Ready:      {}\n    Restarts:   {}",
                        cs.ready, cs.restart_count
                    );
                }
            }
            let _ = writeln!(out, "Conditions:");
            for c in &p.status.conditions {
                let _ = writeln!(
                    out,
                    "  {:<16} {:<6} {} {}",
                    c.type_, c.status, c.reason, c.message
                );
            }
        }
        AnyObject::Service(s) => {
            let sel: Vec<String> = s
                .spec
                .selector
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let _ = writeln!(out, "Selector:     {}", sel.join(","));
            let _ = writeln!(
                out,
                "Type:         {}",
                serde_json::to_value(s.spec.type_)
                    .unwrap_or_default()
                    .as_str()
                    .unwrap_or_default()
            );
            let _ = writeln!(out, "IP:           {}", s.spec.cluster_ip);
            for p in &s.spec.ports {
                let _ = writeln!(
                    out,
                    "Port:         {} {}/{} -> {}",
                    if p.name.is_empty() {
                        "<unset>"
                    } else {
                        &p.name
                    },
                    p.port,
                    p.protocol,
                    p.target()
                );
                if let Some(np) = p.node_port {
                    let _ = writeln!(out, "NodePort:     {np}/{}", p.protocol);
                }
            }
            let affinity = s
                .affinity_timeout()
                .map(|t| format!("ClientIP ({t}s timeout)"))
                .unwrap_or_else(|| "None".into());
            let _ = writeln!(out, "Session Affinity: {affinity}");
        }
        AnyObject::Endpoints(e) => {
            let _ = writeln!(out, "Subsets:");
            for s in &e.subsets {
                let ready: Vec<&str> = s.addresses.iter().map(|a| a.ip.as_str()).collect();
                let not_ready: Vec<&str> = s
                    .not_ready_addresses
                    .iter()
                    .map(|a| a.ip.as_str())
                    .collect();
                let _ = writeln!(out, "  Addresses:          {}", ready.join(","));
                let _ = writeln!(out, "  NotReadyAddresses:  {}", not_ready.join(","));
                for p in &s.ports {
                    let _ = writeln!(out, "  Port: {} {}/{}", p.name, p.port, p.protocol);
                }
            }
        }
        AnyObject::ConfigMap(c) => {
            // As kubectl: a ConfigMap's values are shown, binary ones by size.
            let _ = writeln!(out, "\nData\n====");
            for (k, v) in &c.data {
                let _ = writeln!(out, "{k}:\n----\n{v}\n");
            }
            let _ = writeln!(out, "\nBinaryData\n====");
            for (k, v) in c
                .entries()
                .iter()
                .filter(|(k, _)| c.binary_data.contains_key(*k))
            {
                let _ = writeln!(out, "{k}: {} bytes", v.len());
            }
        }
        AnyObject::Secret(s) => {
            // As kubectl: a Secret's values are never shown, only their sizes.
            let _ = writeln!(out, "Type:  {}", s.secret_type());
            let _ = writeln!(out, "\nData\n====");
            for (k, v) in s.entries() {
                let _ = writeln!(out, "{k}:  {} bytes", v.len());
            }
        }
        AnyObject::Event(e) => {
            let o = &e.involved_object;
            let _ = writeln!(out, "Involved Object:");
            let _ = writeln!(out, "  Kind:       {}", o.kind);
            let _ = writeln!(out, "  Name:       {}", o.name);
            if !o.namespace.is_empty() {
                let _ = writeln!(out, "  Namespace:  {}", o.namespace);
            }
            if !o.field_path.is_empty() {
                let _ = writeln!(out, "  Field Path: {}", o.field_path);
            }
            let _ = writeln!(out, "Type:         {}", e.type_);
            let _ = writeln!(out, "Reason:       {}", e.reason);
            let _ = writeln!(out, "Message:      {}", e.message);
            let _ = writeln!(out, "Source:       {}", e.source_column());
            let _ = writeln!(out, "Count:        {}", e.count);
            if let Some(t) = e.first_seen() {
                let _ = writeln!(out, "First Seen:   {t}");
            }
            if let Some(t) = e.last_seen() {
                let _ = writeln!(out, "Last Seen:    {t}");
            }
        }
        AnyObject::Deployment(d) => {
            let _ = writeln!(out, "Selector:     {}", d.spec.selector.to_selector());
            let st = &d.status;
            let _ = writeln!(
                out,
                "Replicas:     {} desired | {} updated | {} total | {} available | {} unavailable",
                d.replicas(),
                st.updated_replicas,
                st.replicas,
                st.available_replicas,
                st.unavailable_replicas
            );
            let _ = writeln!(
                out,
                "Strategy:     {}",
                if d.is_recreate() {
                    "Recreate"
                } else {
                    "RollingUpdate"
                }
            );
            for c in &d.spec.template.spec.containers {
                let _ = writeln!(out, "Container:    {} ({})", c.name, c.image);
            }
            let _ = writeln!(out, "Conditions:");
            for c in &st.conditions {
                let _ = writeln!(out, "  {:<12} {:<6} {}", c.type_, c.status, c.reason);
            }
        }
    }
    out
}

/// The field selector kubectl's describe lists an object's events with
/// (`involvedObject.name=…,involvedObject.namespace=…,involvedObject.kind=…,
/// involvedObject.uid=…`), and the namespace to list in ("" for all: a
/// cluster-scoped object's events may be in any namespace).
pub fn events_query(obj: &AnyObject) -> (String, String) {
    let m = obj.meta();
    let mut sel = vec![
        format!("involvedObject.name={}", m.name),
        format!("involvedObject.namespace={}", m.namespace),
        format!("involvedObject.kind={}", obj.kind().info().name),
    ];
    // As kubectl: a Node's events carry its name as uid (the kubelet's
    // node reference), so that is what is asked for.
    let uid = if obj.kind() == keel_api::Kind::Node {
        &m.name
    } else {
        &m.uid
    };
    if !uid.is_empty() {
        sel.push(format!("involvedObject.uid={uid}"));
    }
    (m.namespace.clone(), sel.join(","))
}

/// kubectl's `Events:` section: oldest first, `<none>` when there are none;
/// a repeated event's age reads `5s (x3 over 40s)`.
pub fn events_section(events: &[Event], now: SystemTime) -> String {
    let mut out = String::new();
    if events.is_empty() {
        out.push_str("Events:       <none>\n");
        return out;
    }
    let mut events: Vec<&Event> = events.iter().collect();
    events.sort_by_key(|e| (e.last_seen(), e.meta().name.clone()));
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.type_.clone(),
                e.reason.clone(),
                e.last_seen_column(now),
                e.from().to_string(),
                e.message.trim().to_string(),
            ]
        })
        .collect();
    out.push_str("Events:\n");
    let table = crate::get::render(&["Type", "Reason", "Age", "From", "Message"], &{
        let mut all = vec![
            ["----", "------", "----", "----", "-------"]
                .map(String::from)
                .to_vec(),
        ];
        all.extend(rows);
        all
    });
    for line in table.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

#[cfg(test)]
mod tests;
