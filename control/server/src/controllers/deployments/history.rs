//! A Deployment's revision history, as Kubernetes keeps it in ReplicaSets:
//! each distinct pod template the Deployment has had, numbered. keel has no
//! ReplicaSet objects; the history lives in the Deployment's annotation
//! `keel.dev/revision-history` (a JSON list of `{revision, template}`),
//! written inside the same write that changes the template, and
//! `deployment.kubernetes.io/revision` names the current revision as in
//! Kubernetes. The API serves each entry as a read-only ReplicaSet
//! (`kubectl rollout history|undo` read them). Going back to an earlier
//! template moves its entry to a new revision, as Kubernetes does; at most
//! `spec.revisionHistoryLimit` old revisions are kept (default 10), and
//! lowering the limit drops the oldest at the next write, as Kubernetes'
//! cleanup of old ReplicaSets does.

use keel_api::Deployment;
use serde_json::{Value, json};

pub const HISTORY_ANNOTATION: &str = "keel.dev/revision-history";
pub const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";
/// The history entries: `(revision, template)`.
pub fn entries(d: &Deployment) -> Vec<(u64, Value)> {
    d.metadata
        .annotations
        .get(HISTORY_ANNOTATION)
        .and_then(|s| serde_json::from_str::<Vec<Value>>(s).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| Some((e.get("revision")?.as_u64()?, e.get("template")?.clone())))
        .collect()
}

/// Records `d`'s template in its history (carrying the history of `old`,
/// the stored Deployment, which a user's write does not send back).
pub fn record(d: &mut Deployment, old: Option<&Deployment>) {
    let mut history = old.map(entries).unwrap_or_default();
    let template = serde_json::to_value(&d.spec.template).expect("templates serialize");
    let current = history.iter().map(|(r, _)| *r).max();
    let unchanged = old.is_some_and(|o| o.spec.template == d.spec.template)
        && current.is_some_and(|c| history.iter().any(|(r, t)| *r == c && *t == template));
    if !unchanged {
        let next = current.unwrap_or(0) + 1;
        history.retain(|(_, t)| *t != template);
        history.push((next, template));
        history.sort_by_key(|(r, _)| *r);
    }
    let excess = history.len().saturating_sub(d.revision_history_limit() + 1);
    history.drain(..excess);
    let revision = history.iter().map(|(r, _)| *r).max().unwrap_or(1);
    let list: Vec<Value> = history
        .into_iter()
        .map(|(revision, template)| json!({"revision": revision, "template": template}))
        .collect();
    let a = &mut d.metadata.annotations;
    a.insert(HISTORY_ANNOTATION.into(), Value::Array(list).to_string());
    a.insert(REVISION_ANNOTATION.into(), revision.to_string());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn deployment(image: &str) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}))
        .unwrap()
    }

    fn revisions(d: &Deployment) -> Vec<(u64, String)> {
        entries(d)
            .into_iter()
            .map(|(r, t)| {
                (
                    r,
                    t["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    }

    #[test]
    fn each_template_is_a_revision_and_going_back_renumbers_it() {
        let mut d1 = deployment("a");
        record(&mut d1, None);
        assert_eq!(d1.metadata.annotations[REVISION_ANNOTATION], "1");
        let mut d2 = deployment("b");
        record(&mut d2, Some(&d1));
        assert_eq!(revisions(&d2), [(1, "a".into()), (2, "b".into())]);
        // An update that leaves the template alone (and sends no history).
        let mut same = deployment("b");
        same.spec.replicas = Some(5);
        record(&mut same, Some(&d2));
        assert_eq!(same.metadata.annotations[REVISION_ANNOTATION], "2");
        assert_eq!(revisions(&same), revisions(&d2));
        // Back to a: revision 3, and 1 is gone.
        let mut back = deployment("a");
        record(&mut back, Some(&same));
        assert_eq!(revisions(&back), [(2, "b".into()), (3, "a".into())]);
        assert_eq!(back.metadata.annotations[REVISION_ANNOTATION], "3");
    }

    #[test]
    fn old_revisions_beyond_the_limit_are_dropped() {
        let mut d = deployment("0");
        record(&mut d, None);
        for i in 1..20 {
            let mut next = deployment(&i.to_string());
            record(&mut next, Some(&d));
            d = next;
        }
        let r = revisions(&d);
        assert_eq!(r.len(), 10 + 1, "Kubernetes' default limit");
        assert_eq!(r.last().unwrap(), &(20, "19".to_string()));

        // A lower revisionHistoryLimit drops the oldest at the next write,
        // even one that leaves the template alone.
        let mut lower = deployment("19");
        lower.spec.revision_history_limit = Some(2);
        record(&mut lower, Some(&d));
        assert_eq!(
            revisions(&lower),
            [(18, "17".into()), (19, "18".into()), (20, "19".into())]
        );
        // 0 keeps only the current template.
        let mut none = deployment("x");
        none.spec.revision_history_limit = Some(0);
        record(&mut none, Some(&lower));
        assert_eq!(revisions(&none), [(21, "x".into())]);
    }
}
