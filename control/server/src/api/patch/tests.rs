//! The three patch types on the shapes kubectl sends.

use serde_json::json;

use super::*;

#[test]
fn merge_patch_merges_objects_removes_nulls_and_replaces_lists() {
    let mut doc = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"ports": [{"port": 80}, {"port": 81}]}});
    merge(
        &mut doc,
        &json!({"metadata": {"labels": {"a": null, "c": "3"}}, "spec": {"ports": [{"port": 90}]}}),
    );
    assert_eq!(
        doc,
        json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "spec": {"ports": [{"port": 90}]}})
    );
}

#[test]
fn json_patch_runs_every_operation_in_order() {
    let mut doc = json!({"spec": {"replicas": 1, "list": ["a", "b"]}, "metadata": {"name": "x"}});
    json_patch(
        &mut doc,
        &json!([
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/list/-", "value": "c"},
            {"op": "add", "path": "/spec/list/0", "value": "z"},
            {"op": "remove", "path": "/spec/list/1"},
            {"op": "copy", "from": "/metadata/name", "path": "/spec/copied"},
            {"op": "move", "from": "/spec/copied", "path": "/spec/moved"},
            {"op": "add", "path": "/metadata/labels", "value": {"a~b/c": "1"}},
            {"op": "test", "path": "/metadata/labels/a~0b~1c", "value": "1"}
        ]),
    )
    .unwrap();
    assert_eq!(
        doc,
        json!({"spec": {"replicas": 3, "list": ["z", "b", "c"], "moved": "x"}, "metadata": {"name": "x", "labels": {"a~b/c": "1"}}})
    );
}

#[test]
fn a_failing_json_patch_operation_changes_nothing_and_names_itself() {
    let before = json!({"spec": {"replicas": 1}});
    let mut doc = before.clone();
    let err = json_patch(
        &mut doc,
        &json!([
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "remove", "path": "/spec/nope"}
        ]),
    )
    .unwrap_err();
    assert_eq!(doc, before);
    assert_eq!(
        err.to_string(),
        "json patch operation 1 (remove /spec/nope): /spec/nope does not exist"
    );
    let err = json_patch(
        &mut doc,
        &json!([{"op": "test", "path": "/spec/replicas", "value": 5}]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("differs"), "{err}");
    assert!(json_patch(&mut doc, &json!({"op": "add"})).is_err());
}

fn deployment() -> Value {
    json!({"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "ports": [{"containerPort": 80, "name": "http"}]},
        {"name": "side", "image": "side:1"}
    ]}}}})
}

#[test]
fn strategic_merge_matches_containers_env_and_ports_by_their_keys() {
    let mut doc = deployment();
    strategic(
        &mut doc,
        &json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:2", "env": [{"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
             "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]}
        ]}}}}),
    )
    .unwrap();
    assert_eq!(
        doc,
        json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "web:2",
             "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "20"}, {"name": "C", "value": "3"}],
             "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]},
            {"name": "side", "image": "side:1"}
        ]}}}})
    );
}

#[test]
fn strategic_merge_deletes_replaces_and_orders_as_directed() {
    let mut doc = deployment();
    strategic(
        &mut doc,
        &json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}],
            "containers": [{"name": "web", "env": [{"name": "A", "$patch": "delete"}]}]
        }}}}),
    )
    .unwrap();
    let containers = &doc["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["name"], "side");
    assert_eq!(containers[1]["env"], json!([{"name": "B", "value": "2"}]));

    strategic(
        &mut doc,
        &json!({"spec": {"template": {"spec": {"containers": [
            {"name": "only", "image": "o:1"}, {"$patch": "replace"}
        ]}}}}),
    )
    .unwrap();
    assert_eq!(
        doc["spec"]["template"]["spec"]["containers"],
        json!([{"name": "only", "image": "o:1"}])
    );

    strategic(
        &mut doc,
        &json!({"spec": {"template": {"$patch": "delete"}}}),
    )
    .unwrap();
    assert_eq!(doc, json!({"spec": {}}));
}

#[test]
fn a_service_port_list_merges_by_port_and_keyless_lists_are_replaced() {
    let mut svc = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}], "externalIPs": ["1.2.3.4"]},
                         "metadata": {"finalizers": ["a"]}});
    strategic(
        &mut svc,
        &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 81}], "externalIPs": ["5.6.7.8"]},
                "metadata": {"finalizers": ["b"]}}),
    )
    .unwrap();
    assert_eq!(
        svc,
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 81}], "externalIPs": ["5.6.7.8"]},
               "metadata": {"finalizers": ["a", "b"]}})
    );
    assert!(strategic(&mut svc, &json!([1])).is_err());
}

#[test]
fn merge_keys_follow_the_parent_field() {
    let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(merge_key(&p(&["spec"]), "ports"), Some("port"));
    assert_eq!(
        merge_key(&p(&["spec", "template", "spec", "containers"]), "ports"),
        Some("containerPort")
    );
    assert_eq!(merge_key(&p(&["spec"]), "tolerations"), None);
}
