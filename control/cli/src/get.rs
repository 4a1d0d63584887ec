//! `keelctl get`: kubectl-style tables, or YAML/JSON.

use std::{process::ExitCode, str::FromStr};

use keel_api::{
    AnyObject, Kind, Pod,
    client::{Client, ListParams},
    meta::short_age,
};

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Table,
    Wide,
    Yaml,
    Json,
    /// `kind/name` per line (`deployment.apps/web`), as kubectl prints.
    Name,
    /// `jsonpath=TEMPLATE` or `jsonpath-file=FILE`: kubectl's templates.
    JsonPath(crate::jsonpath::Template),
}

impl FromStr for Output {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "table" | "" => Output::Table,
            "wide" => Output::Wide,
            "yaml" => Output::Yaml,
            "json" => Output::Json,
            "name" => Output::Name,
            _ if s.starts_with("jsonpath=") => Output::JsonPath(
                crate::jsonpath::Template::parse(&s["jsonpath=".len()..])
                    .map_err(|e| anyhow::anyhow!("-o {e}"))?,
            ),
            _ if s.starts_with("jsonpath-file=") => {
                let path = &s["jsonpath-file=".len()..];
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("-o jsonpath-file: {path}: {e}"))?;
                Output::JsonPath(
                    crate::jsonpath::Template::parse(text.trim_end_matches('\n'))
                        .map_err(|e| anyhow::anyhow!("-o jsonpath-file: {path}: {e}"))?,
                )
            }
            _ => anyhow::bail!(
                "-o: unknown output format {s:?} (use wide, yaml, json, name, jsonpath=TEMPLATE or jsonpath-file=FILE)"
            ),
        })
    }
}

pub struct Options {
    pub output: Output,
    pub all_namespaces: bool,
    pub selector: Option<String>,
    pub field_selector: Option<String>,
}

pub async fn run(
    client: &Client,
    kind: Kind,
    namespace: &str,
    name: Option<&str>,
    opts: &Options,
) -> anyhow::Result<ExitCode> {
    let objects = match name {
        Some(n) => vec![client.get_any(kind, namespace, n).await?],
        None => {
            let ns = if opts.all_namespaces { "" } else { namespace };
            let params = ListParams {
                label_selector: opts.selector.clone(),
                field_selector: opts.field_selector.clone(),
            };
            client.list_any(kind, ns, &params).await?
        }
    };
    match &opts.output {
        Output::Name => {
            for o in &objects {
                println!("{}", name_of(o));
            }
        }
        Output::Json => {
            let v: Vec<serde_json::Value> = objects.iter().map(AnyObject::to_json_value).collect();
            let out = if name.is_some() {
                v.into_iter().next().unwrap_or_default()
            } else {
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": v})
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Output::JsonPath(template) => {
            let v: Vec<serde_json::Value> = objects.iter().map(AnyObject::to_json_value).collect();
            let data = if name.is_some() {
                v.into_iter().next().unwrap_or_default()
            } else {
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": v})
            };
            print!(
                "{}",
                template.render(&data).map_err(|e| anyhow::anyhow!(e))?
            );
        }
        Output::Yaml => {
            let v: Vec<serde_json::Value> = objects.iter().map(AnyObject::to_json_value).collect();
            let out = if name.is_some() {
                v.into_iter().next().unwrap_or_default()
            } else {
                serde_json::json!({"apiVersion": "v1", "kind": "List", "items": v})
            };
            print!("{}", serde_yaml_ng::to_string(&out)?);
        }
        Output::Table | Output::Wide => {
            if objects.is_empty() {
                if opts.all_namespaces || !kind.namespaced() {
                    eprintln!("No resources found");
                } else {
                    eprintln!("No resources found in {namespace} namespace.");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let with_ns = opts.all_namespaces && kind.namespaced();
            print!(
                "{}",
                table(kind, &objects, opts.output == Output::Wide, with_ns)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `get -w`: the table, then a row per change (a deleted object's last
/// row too), as kubectl's `get --watch` prints them; runs until interrupted,
/// resuming from the last resourceVersion when the server ends a watch.
pub async fn watch(
    client: &Client,
    kind: Kind,
    namespace: &str,
    opts: &Options,
) -> anyhow::Result<ExitCode> {
    use keel_api::{ConfigMap, Deployment, Endpoints, Event, Node, Secret, Service};
    match kind {
        Kind::Node => watch_typed::<Node>(client, namespace, opts).await,
        Kind::Pod => watch_typed::<Pod>(client, namespace, opts).await,
        Kind::Service => watch_typed::<Service>(client, namespace, opts).await,
        Kind::Endpoints => watch_typed::<Endpoints>(client, namespace, opts).await,
        Kind::Deployment => watch_typed::<Deployment>(client, namespace, opts).await,
        Kind::ConfigMap => watch_typed::<ConfigMap>(client, namespace, opts).await,
        Kind::Secret => watch_typed::<Secret>(client, namespace, opts).await,
        Kind::Event => watch_typed::<Event>(client, namespace, opts).await,
    }
}

async fn watch_typed<R: keel_api::Resource + Into<AnyObject>>(
    client: &Client,
    namespace: &str,
    opts: &Options,
) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let kind = Kind::of::<R>();
    let ns = if opts.all_namespaces { "" } else { namespace };
    let params = ListParams {
        label_selector: opts.selector.clone(),
        field_selector: opts.field_selector.clone(),
    };
    let wide = opts.output == Output::Wide;
    let with_ns = opts.all_namespaces && kind.namespaced();
    let list = client.list::<R>(ns, &params).await?;
    let mut rv = list.metadata.resource_version.clone();
    let objects: Vec<AnyObject> = list.items.into_iter().map(Into::into).collect();
    print!("{}", table(kind, &objects, wide, with_ns));
    std::io::stdout().flush()?;
    loop {
        let mut stream = client.watch::<R>(ns, &params, &rv).await?;
        while let Some(ev) = stream.next().await {
            let ev = ev?;
            let seen = ev.object.meta().resource_version.clone();
            if !seen.is_empty() {
                rv = seen;
            }
            if ev.type_ == keel_api::EventType::Bookmark {
                continue;
            }
            let row = table(kind, &[ev.object.into()], wide, with_ns);
            // The header line is printed once, above.
            print!("{}", row.split_once('\n').map_or("", |(_, rows)| rows));
            std::io::stdout().flush()?;
        }
    }
}

/// `pod/web`, `deployment.apps/web`: how kubectl names an object.
pub fn name_of(obj: &AnyObject) -> String {
    let info = obj.kind().info();
    let kind = info.name.to_lowercase();
    if info.group().is_empty() {
        format!("{kind}/{}", obj.meta().name)
    } else {
        format!("{kind}.{}/{}", info.group(), obj.meta().name)
    }
}

fn age(obj: &AnyObject) -> String {
    obj.meta()
        .creation_timestamp
        .map(|t| short_age(t.elapsed()))
        .unwrap_or_else(|| "<unknown>".into())
}

/// kubectl's STATUS column for a pod: the most telling container reason.
pub fn pod_status(p: &Pod) -> String {
    for cs in p.status.init_container_statuses.iter() {
        if let Some(t) = &cs.state.terminated
            && t.exit_code != 0
        {
            return format!(
                "Init:{}",
                if t.reason.is_empty() {
                    "Error"
                } else {
                    &t.reason
                }
            );
        }
        if let Some(w) = &cs.state.waiting
            && !w.reason.is_empty()
            && w.reason != "PodInitializing"
        {
            return format!("Init:{}", w.reason);
        }
    }
    for cs in &p.status.container_statuses {
        if let Some(w) = &cs.state.waiting
            && !w.reason.is_empty()
        {
            return w.reason.clone();
        }
        if let Some(t) = &cs.state.terminated
            && !t.reason.is_empty()
        {
            return t.reason.clone();
        }
    }
    if !p.status.reason.is_empty() {
        return p.status.reason.clone();
    }
    p.status
        .phase
        .map(|ph| ph.as_str().to_string())
        .unwrap_or_else(|| "Pending".into())
}

fn table(kind: Kind, objects: &[AnyObject], wide: bool, with_ns: bool) -> String {
    let mut header: Vec<&str> = match kind {
        Kind::Node => vec!["NAME", "STATUS", "AGE", "VERSION"],
        Kind::Pod => vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        Kind::Service => vec![
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        Kind::Endpoints => vec!["NAME", "ENDPOINTS", "AGE"],
        Kind::Deployment => vec!["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        Kind::ConfigMap => vec!["NAME", "DATA", "AGE"],
        Kind::Secret => vec!["NAME", "TYPE", "DATA", "AGE"],
        Kind::Event => vec!["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
    };
    if wide {
        header.extend(match kind {
            Kind::Node => vec!["INTERNAL-IP", "POD-CIDR", "KERNEL-VERSION"],
            Kind::Pod => vec!["IP", "NODE"],
            Kind::Service => vec!["SELECTOR"],
            Kind::Endpoints => vec![],
            Kind::Deployment => vec!["CONTAINERS", "IMAGES", "SELECTOR"],
            Kind::ConfigMap | Kind::Secret => vec![],
            Kind::Event => vec!["SOURCE", "FIRST SEEN", "COUNT", "NAME"],
        });
    }
    if with_ns {
        header.insert(0, "NAMESPACE");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for obj in objects {
        let name = obj.meta().name.clone();
        let mut row: Vec<String> = match obj {
            AnyObject::Node(n) => {
                let mut status = match n.condition("Ready").map(|c| c.status.as_str()) {
                    Some("True") => "Ready".to_string(),
                    _ => "NotReady".to_string(),
                };
                if n.spec.unschedulable {
                    status.push_str(",SchedulingDisabled");
                }
                let mut r = vec![
                    name,
                    status,
                    age(obj),
                    n.status
                        .node_info
                        .as_ref()
                        .map(|i| i.kubelet_version.clone())
                        .unwrap_or_default(),
                ];
                if wide {
                    r.push(n.internal_ip().unwrap_or("<none>").to_string());
                    r.push(if n.spec.pod_cidr.is_empty() {
                        "<none>".into()
                    } else {
                        n.spec.pod_cidr.clone()
                    });
                    r.push(
                        n.status
                            .node_info
                            .as_ref()
                            .map(|i| i.kernel_version.clone())
                            .unwrap_or_default(),
                    );
                }
                r
            }
            AnyObject::Pod(p) => {
                let ready = p
                    .status
                    .container_statuses
                    .iter()
                    .filter(|c| c.ready)
                    .count();
                let restarts: u32 = p
                    .status
                    .container_statuses
                    .iter()
                    .map(|c| c.restart_count)
                    .sum();
                let mut r = vec![
                    name,
                    format!("{ready}/{}", p.spec.containers.len()),
                    pod_status(p),
                    restarts.to_string(),
                    age(obj),
                ];
                if wide {
                    r.push(if p.status.pod_ip.is_empty() {
                        "<none>".into()
                    } else {
                        p.status.pod_ip.clone()
                    });
                    r.push(if p.spec.node_name.is_empty() {
                        "<none>".into()
                    } else {
                        p.spec.node_name.clone()
                    });
                }
                r
            }
            AnyObject::Service(s) => {
                let ports: Vec<String> = s
                    .spec
                    .ports
                    .iter()
                    .map(|p| match p.node_port {
                        Some(np) => format!("{}:{np}/{}", p.port, p.protocol),
                        None => format!("{}/{}", p.port, p.protocol),
                    })
                    .collect();
                let ext = if s.spec.external_ips.is_empty() {
                    "<none>".to_string()
                } else {
                    s.spec.external_ips.join(",")
                };
                let type_ = serde_json::to_value(s.spec.type_)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                let mut r = vec![
                    name,
                    type_,
                    s.spec.cluster_ip.clone(),
                    ext,
                    ports.join(","),
                    age(obj),
                ];
                if wide {
                    let sel: Vec<String> = s
                        .spec
                        .selector
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    r.push(if sel.is_empty() {
                        "<none>".into()
                    } else {
                        sel.join(",")
                    });
                }
                r
            }
            AnyObject::Endpoints(e) => {
                let mut eps: Vec<String> = Vec::new();
                for s in &e.subsets {
                    for a in &s.addresses {
                        for p in &s.ports {
                            eps.push(format!("{}:{}", a.ip, p.port));
                        }
                    }
                }
                let shown = if eps.is_empty() {
                    "<none>".to_string()
                } else if eps.len() > 3 {
                    format!("{} + {} more...", eps[..3].join(","), eps.len() - 3)
                } else {
                    eps.join(",")
                };
                vec![name, shown, age(obj)]
            }
            AnyObject::ConfigMap(c) => vec![
                name,
                (c.data.len() + c.binary_data.len()).to_string(),
                age(obj),
            ],
            AnyObject::Secret(s) => vec![
                name,
                s.secret_type().to_string(),
                s.entries().len().to_string(),
                age(obj),
            ],
            AnyObject::Event(e) => {
                let now = std::time::SystemTime::now();
                let mut r = vec![
                    e.last_seen_column(now),
                    e.type_.clone(),
                    e.reason.clone(),
                    e.object_column(),
                    e.message.trim().to_string(),
                ];
                if wide {
                    r.push(e.source_column());
                    r.push(
                        e.first_seen()
                            .map(|t| short_age(t.elapsed()))
                            .unwrap_or_else(|| "<unknown>".into()),
                    );
                    r.push(e.count.to_string());
                    r.push(name);
                }
                r
            }
            AnyObject::Deployment(d) => {
                let mut r = vec![
                    name,
                    format!("{}/{}", d.status.ready_replicas, d.replicas()),
                    d.status.updated_replicas.to_string(),
                    d.status.available_replicas.to_string(),
                    age(obj),
                ];
                if wide {
                    let c = &d.spec.template.spec.containers;
                    r.push(
                        c.iter()
                            .map(|c| c.name.clone())
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    r.push(
                        c.iter()
                            .map(|c| c.image.clone())
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                    r.push(d.spec.selector.to_selector().to_string());
                }
                r
            }
        };
        if with_ns {
            row.insert(0, obj.meta().namespace.clone());
        }
        rows.push(row);
    }
    render(&header, &rows)
}

/// Columns separated by three spaces, as kubectl prints them.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("   ");
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests;
