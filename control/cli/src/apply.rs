//! `keelctl apply -f`: create what is missing, replace what exists (keeping
//! what the server assigned, like cluster IPs), report each object.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use keel_api::{AnyObject, client::Client};
use serde::Deserialize;

/// Every document in the files (directories: their .yaml/.yml/.json files, sorted).
pub fn documents(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.extension()
                        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p.clone());
        }
    }
    let mut docs = Vec::new();
    for f in files {
        let text = read(&f)?;
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let value = serde_json::Value::deserialize(doc)
                .with_context(|| format!("{} (document {}): not valid YAML", f.display(), i + 1))?;
            if value.is_null() {
                continue;
            }
            docs.push((format!("{} (document {})", f.display(), i + 1), value));
        }
    }
    Ok(docs)
}

fn read(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub async fn run(client: &Client, namespace: &str, files: &[PathBuf]) -> anyhow::Result<ExitCode> {
    // Decode everything first: a bad document applies nothing.
    let mut objects = Vec::new();
    for (origin, value) in documents(files)? {
        let mut obj = AnyObject::from_value(value).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        if obj.kind().namespaced() && obj.meta().namespace.is_empty() {
            obj.meta_mut().namespace = namespace.to_string();
        }
        let errs = obj.validate();
        if !errs.is_empty() {
            let list: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            anyhow::bail!(
                "{origin}: {} {} is invalid: {}",
                obj.kind(),
                obj.meta().name,
                list.join("; ")
            );
        }
        objects.push(obj);
    }
    if objects.is_empty() {
        anyhow::bail!("no objects passed to apply");
    }
    let mut code = ExitCode::SUCCESS;
    for obj in objects {
        let kind = obj.kind();
        let (ns, name) = (obj.meta().namespace.clone(), obj.meta().name.clone());
        let label = format!("{}/{name}", kind.as_str().to_lowercase());
        let result = match client.get_any(kind, &ns, &name).await {
            Ok(current) => {
                // Like kubectl apply: replace what the manifest says without a
                // resourceVersion precondition (controllers write status all
                // the time); the server keeps status and assigned values.
                let mut next = obj;
                next.meta_mut().resource_version.clear();
                next.meta_mut().uid = current.meta().uid.clone();
                client
                    .update_any_warned(&next)
                    .await
                    .map(|(stored, warnings)| {
                        let (a, b) = (stored.meta(), current.meta());
                        let what = if a.generation == b.generation
                            && a.labels == b.labels
                            && a.annotations == b.annotations
                        {
                            "unchanged"
                        } else {
                            "configured"
                        };
                        (what, warnings)
                    })
            }
            Err(e) if e.is_not_found() => client
                .create_any_warned(&obj)
                .await
                .map(|(_, warnings)| ("created", warnings)),
            Err(e) => Err(e),
        };
        match result {
            Ok((what, warnings)) => {
                // As kubectl: the server's warnings on stderr, before the line.
                for w in warnings {
                    eprintln!("Warning: {w}");
                }
                println!("{label} {what}");
            }
            Err(keel_api::client::ClientError::Api(s)) => {
                eprintln!(
                    "Error from server ({}): error when applying {label}: {}",
                    s.reason, s.message
                );
                code = ExitCode::FAILURE;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(code)
}
