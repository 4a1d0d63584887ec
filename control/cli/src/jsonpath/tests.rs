//! Cases as kubectl prints them (kubectl 1.32, `-o jsonpath=…`).

use serde_json::json;

use super::Template;

fn list() -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {"metadata": {"name": "web-1", "labels": {"app": "web", "app.kubernetes.io/name": "w"}},
             "spec": {"nodeName": "node-1", "containers": [{"name": "c", "ports": [{"containerPort": 80}]}]},
             "status": {"podIP": "10.244.1.5", "phase": "Running", "restarts": 2,
                        "conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "web-2", "labels": {"app": "web"}},
             "spec": {"nodeName": "node-2", "containers": [{"name": "c"}, {"name": "sidecar"}]},
             "status": {"podIP": "10.244.2.7", "phase": "Pending", "restarts": 0,
                        "conditions": [{"type": "Ready", "status": "False"}]}},
        ]
    })
}

fn run(template: &str) -> String {
    Template::parse(template)
        .unwrap_or_else(|e| panic!("{template}: {e}"))
        .render(&list())
        .unwrap()
}

#[test]
fn paths_wildcards_indices_and_slices() {
    assert_eq!(run("{.items[*].metadata.name}"), "web-1 web-2");
    assert_eq!(run("{.items[0].status.podIP}"), "10.244.1.5");
    assert_eq!(run("{.items[-1].metadata.name}"), "web-2");
    assert_eq!(run("{.items[0:1].metadata.name}"), "web-1");
    assert_eq!(run("{.items[1:].spec.containers[*].name}"), "c sidecar");
    assert_eq!(run("{$.kind}"), "List");
    assert_eq!(run("{.items[0].metadata['name']}"), "web-1");
    assert_eq!(
        run("{.items[0].metadata.labels.app\\.kubernetes\\.io/name}"),
        "w"
    );
    assert_eq!(run("{.items[*].status.restarts}"), "2 0");
    assert_eq!(run("{..podIP}"), "10.244.1.5 10.244.2.7");
    assert_eq!(
        run("{.items[0].metadata.labels}"),
        r#"{"app":"web","app.kubernetes.io/name":"w"}"#
    );
    assert_eq!(
        run("{.items[0].status['phase','podIP']}"),
        "Running 10.244.1.5"
    );
    // kubectl allows missing keys: nothing is printed.
    assert_eq!(run("{.items[*].status.hostIP}"), "");
    assert_eq!(run("{.nope}"), "");
}

#[test]
fn text_literals_and_ranges() {
    assert_eq!(
        run("pods: {.items[*].metadata.name}!"),
        "pods: web-1 web-2!"
    );
    assert_eq!(
        run(r#"{range .items[*]}{.metadata.name}{"\t"}{.spec.nodeName}{"\n"}{end}"#),
        "web-1\tnode-1\nweb-2\tnode-2\n"
    );
    assert_eq!(
        run("{range .items[*]}[{range .spec.containers[*]}{.name},{end}]{end}"),
        "[c,][c,sidecar,]"
    );
    // `{.}` is the current item.
    assert_eq!(
        run("{range .items[*].metadata.labels.app}{.};{end}"),
        "web;web;"
    );
}

#[test]
fn filters() {
    assert_eq!(
        run(r#"{.items[?(@.status.phase=="Running")].metadata.name}"#),
        "web-1"
    );
    assert_eq!(
        run("{.items[?(@.status.phase!='Running')].metadata.name}"),
        "web-2"
    );
    assert_eq!(
        run("{.items[?(@.status.restarts > 1)].metadata.name}"),
        "web-1"
    );
    assert_eq!(
        run("{.items[?(@.status.restarts<=0)].metadata.name}"),
        "web-2"
    );
    assert_eq!(
        run("{.items[?(@.spec.containers[0].ports)].metadata.name}"),
        "web-1"
    );
    assert_eq!(
        run(r#"{.items[*].status.conditions[?(@.type=="Ready")].status}"#),
        "True False"
    );
}

#[test]
fn bad_templates_say_where() {
    for (t, want) in [
        ("{.items[*].metadata.name", "expected }"),
        ("{range .items[*]}{.x}", "{range} without {end}"),
        ("{.x}{end}", "{end} without {range}"),
        ("{.items[x]}", "expected an index"),
        ("{.items[?(.a==1)]}", "a filter starts with @"),
        (r#"{"abc}"#, "unterminated string"),
    ] {
        let e = Template::parse(t).unwrap_err();
        assert!(e.contains(want) && e.contains("position"), "{t}: {e}");
    }
}
