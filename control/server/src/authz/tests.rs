//! The node rule table and the request parser, by tables of cases.

use std::collections::BTreeMap;

use super::{
    Decision, Facts, User, authorize,
    request::{RequestInfo, Verb},
};

struct Pods(BTreeMap<(&'static str, &'static str), &'static str>);

impl Facts for Pods {
    fn pod_node(&self, namespace: &str, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|((ns, n), _)| *ns == namespace && *n == name)
            .map(|(_, node)| node.to_string())
    }

    /// Pod default/mine (on n1) uses ConfigMap web-config and Secret
    /// db-pass; default/theirs (on n2) uses Secret other.
    fn referenced_by_node(&self, node: &str, resource: &str, namespace: &str, name: &str) -> bool {
        let uses: &[(&str, &str, &str)] = &[
            ("n1", "configmaps", "web-config"),
            ("n1", "secrets", "db-pass"),
            ("n2", "secrets", "other"),
        ];
        namespace == "default" && uses.contains(&(node, resource, name))
    }
}

fn facts() -> Pods {
    Pods(BTreeMap::from([
        (("default", "mine"), "n1"),
        (("default", "theirs"), "n2"),
        (("default", "pending"), ""),
    ]))
}

/// method, path, watch; verb, resource, name, subresource, namespace.
type Case = (
    &'static str,
    &'static str,
    bool,
    Verb,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

#[test]
fn requests_are_read_as_kubernetes_reads_them() {
    let cases: &[Case] = &[
        (
            "GET",
            "/api/v1/nodes",
            false,
            Verb::List,
            Some("nodes"),
            None,
            None,
            None,
        ),
        (
            "GET",
            "/api/v1/nodes",
            true,
            Verb::Watch,
            Some("nodes"),
            None,
            None,
            None,
        ),
        (
            "GET",
            "/api/v1/nodes/n1",
            false,
            Verb::Get,
            Some("nodes"),
            Some("n1"),
            None,
            None,
        ),
        (
            "PUT",
            "/api/v1/nodes/n1/status",
            false,
            Verb::Update,
            Some("nodes"),
            Some("n1"),
            Some("status"),
            None,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods",
            false,
            Verb::Create,
            Some("pods"),
            None,
            None,
            Some("default"),
        ),
        (
            "PATCH",
            "/api/v1/namespaces/d/pods/p/status",
            false,
            Verb::Patch,
            Some("pods"),
            Some("p"),
            Some("status"),
            Some("d"),
        ),
        (
            "DELETE",
            "/api/v1/namespaces/d/pods",
            false,
            Verb::DeleteCollection,
            Some("pods"),
            None,
            None,
            Some("d"),
        ),
        (
            "DELETE",
            "/api/v1/nodes/n",
            false,
            Verb::Delete,
            Some("nodes"),
            Some("n"),
            None,
            None,
        ),
        (
            "GET",
            "/api/v1/namespaces/d",
            false,
            Verb::Get,
            Some("namespaces"),
            Some("d"),
            None,
            None,
        ),
        (
            "GET",
            "/apis/apps/v1/namespaces/d/deployments",
            false,
            Verb::List,
            Some("deployments"),
            None,
            None,
            Some("d"),
        ),
        ("GET", "/api", false, Verb::Get, None, None, None, None),
        ("GET", "/version", false, Verb::Get, None, None, None, None),
    ];
    for (method, path, watch, verb, resource, name, sub, ns) in cases {
        let r = RequestInfo::parse(method, path, *watch);
        assert_eq!(r.verb, *verb, "{method} {path}");
        assert_eq!(r.resource.as_deref(), *resource, "{method} {path}");
        assert_eq!(r.name.as_deref(), *name, "{method} {path}");
        assert_eq!(r.subresource.as_deref(), *sub, "{method} {path}");
        assert_eq!(r.namespace.as_deref(), *ns, "{method} {path}");
    }
    assert_eq!(
        RequestInfo::parse("GET", "/apis/apps/v1/deployments", false)
            .group
            .as_deref(),
        Some("apps")
    );
}

#[test]
fn the_node_rule_table() {
    let n1 = User::Node("n1".into());
    // (method, path, body name for creates, allowed)
    let cases: &[(&str, &str, Option<&str>, bool)] = &[
        // What the agent reads.
        ("GET", "/api/v1/nodes", None, true),
        ("GET", "/api/v1/nodes/n2", None, true),
        ("GET", "/api/v1/pods", None, true),
        ("GET", "/api/v1/namespaces/default/services", None, true),
        ("GET", "/api/v1/endpoints", None, true),
        ("GET", "/api", None, true),
        ("GET", "/apis", None, true),
        // Its own Node, and no other.
        ("POST", "/api/v1/nodes", Some("n1"), true),
        ("POST", "/api/v1/nodes", Some("n2"), false),
        ("PUT", "/api/v1/nodes/n1", None, true),
        ("PUT", "/api/v1/nodes/n1/status", None, true),
        ("PATCH", "/api/v1/nodes/n1/status", None, true),
        ("PUT", "/api/v1/nodes/n2", None, false),
        ("PUT", "/api/v1/nodes/n2/status", None, false),
        ("DELETE", "/api/v1/nodes/n1", None, false),
        ("DELETE", "/api/v1/nodes/n2", None, false),
        // The status of pods bound to it.
        (
            "PUT",
            "/api/v1/namespaces/default/pods/mine/status",
            None,
            true,
        ),
        (
            "PATCH",
            "/api/v1/namespaces/default/pods/mine/status",
            None,
            true,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/pods/theirs/status",
            None,
            false,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/pods/pending/status",
            None,
            false,
        ),
        (
            "PUT",
            "/api/v1/namespaces/default/pods/gone/status",
            None,
            false,
        ),
        ("PUT", "/api/v1/namespaces/default/pods/mine", None, false),
        // Streaming into pods, even its own: the admin's (through
        // keel-control), never a node's.
        (
            "GET",
            "/api/v1/namespaces/default/pods/mine/portforward",
            None,
            false,
        ),
        (
            "POST",
            "/api/v1/namespaces/default/pods/mine/portforward",
            None,
            false,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/pods/mine/exec",
            None,
            false,
        ),
        (
            "DELETE",
            "/api/v1/namespaces/default/pods/mine",
            None,
            false,
        ),
        // Events: recorded and aggregated (create, update, patch), as
        // Kubernetes' system:node role allows; not read, not deleted.
        (
            "POST",
            "/api/v1/namespaces/default/events",
            Some("e.1"),
            true,
        ),
        ("PATCH", "/api/v1/namespaces/default/events/e.1", None, true),
        ("PUT", "/api/v1/namespaces/default/events/e.1", None, true),
        ("GET", "/api/v1/namespaces/default/events", None, false),
        (
            "DELETE",
            "/api/v1/namespaces/default/events/e.1",
            None,
            false,
        ),
        // Nothing else.
        (
            "POST",
            "/api/v1/namespaces/default/services",
            Some("web"),
            false,
        ),
        ("POST", "/api/v1/namespaces/default/pods", Some("p"), false),
        ("GET", "/apis/apps/v1/deployments", None, false),
        (
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            Some("d"),
            false,
        ),
        ("GET", "/metrics", None, false),
        // ConfigMaps and Secrets its pods use, and no others.
        (
            "GET",
            "/api/v1/namespaces/default/configmaps/web-config",
            None,
            true,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/secrets/db-pass",
            None,
            true,
        ),
        (
            "GET",
            "/api/v1/namespaces/default/secrets/other",
            None,
            false,
        ),
        (
            "GET",
            "/api/v1/namespaces/other/secrets/db-pass",
            None,
            false,
        ),
        ("GET", "/api/v1/namespaces/default/secrets", None, false),
        ("GET", "/api/v1/secrets", None, false),
        (
            "PUT",
            "/api/v1/namespaces/default/secrets/db-pass",
            None,
            false,
        ),
    ];
    for (method, path, body_name, allowed) in cases {
        let mut r = RequestInfo::parse(method, path, false);
        if r.verb == Verb::Create {
            r.name = body_name.map(str::to_string);
        }
        let d = authorize(&n1, &r, &facts());
        assert_eq!(d == Decision::Allow, *allowed, "{method} {path}: {d:?}");
        assert_eq!(authorize(&User::Admin, &r, &facts()), Decision::Allow);
        assert!(matches!(
            authorize(&User::Other("bob".into()), &r, &facts()),
            Decision::Deny(_)
        ));
    }
}

#[test]
fn a_list_or_watch_of_one_name_is_judged_as_that_name() {
    let n1 = User::Node("n1".into());
    // (watch, fieldSelector, allowed)
    let cases: &[(bool, Option<&str>, bool)] = &[
        (false, Some("metadata.name=db-pass"), true),
        (true, Some("metadata.name=db-pass"), true),
        (true, Some("metadata.name==db-pass"), true),
        (true, Some("metadata.name=other"), false),
        (true, Some("metadata.name!=other"), false),
        (
            true,
            Some("metadata.name=db-pass,metadata.namespace=default"),
            false,
        ),
        (true, Some("type=Opaque"), false),
        (true, None, false),
    ];
    for (watch, selector, allowed) in cases {
        let r = RequestInfo::parse("GET", "/api/v1/namespaces/default/secrets", *watch)
            .with_name_selector(*selector);
        let d = authorize(&n1, &r, &facts());
        assert_eq!(
            d == Decision::Allow,
            *allowed,
            "{watch} {selector:?}: {d:?}"
        );
    }
    // A named get keeps its name whatever the selector says.
    let r = RequestInfo::parse("GET", "/api/v1/namespaces/default/secrets/other", false)
        .with_name_selector(Some("metadata.name=db-pass"));
    assert_eq!(r.name.as_deref(), Some("other"));
}

#[test]
fn a_denial_names_the_user_the_verb_and_the_resource() {
    let r = RequestInfo::parse(
        "PUT",
        "/api/v1/namespaces/default/pods/theirs/status",
        false,
    );
    let Decision::Deny(m) = authorize(&User::Node("n1".into()), &r, &facts()) else {
        panic!("allowed")
    };
    assert!(m.starts_with("pods \"theirs\" is forbidden: User \"system:node:n1\" cannot update resource \"pods/status\""), "{m}");
    assert!(m.contains("in the namespace \"default\""), "{m}");
    assert!(m.contains("bound to \"n2\""), "{m}");
    let r = RequestInfo::parse("POST", "/api/v1/namespaces/default/services", false);
    let Decision::Deny(m) = authorize(&User::Node("n1".into()), &r, &facts()) else {
        panic!("allowed")
    };
    assert!(m.contains("cannot create resource \"services\""), "{m}");
}
