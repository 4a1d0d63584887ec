use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_and_matches_every_operator() {
    let s = Selector::parse(
        "app=web, tier!=db,env in (prod, staging),track notin (canary),ready,!legacy",
    )
    .unwrap();
    assert_eq!(s.requirements.len(), 6);
    assert!(s.matches(&labels(&[("app", "web"), ("env", "prod"), ("ready", "")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("env", "dev"), ("ready", "")])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("env", "prod"),
        ("ready", ""),
        ("legacy", "1")
    ])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("env", "prod"),
        ("ready", ""),
        ("track", "canary")
    ])));
    assert!(!s.matches(&labels(&[("app", "web"), ("env", "prod")])));
    assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
}

#[test]
fn empty_matches_everything() {
    assert!(Selector::parse("").unwrap().matches(&labels(&[("a", "b")])));
}

#[test]
fn rejects_bad_syntax_naming_the_part() {
    for bad in [
        "app in prod",
        "env in ()",
        "a=b,(c",
        "bad key!=x",
        "app=has space",
        "-x=y",
    ] {
        let e = Selector::parse(bad).unwrap_err();
        assert_eq!(e.selector, bad);
    }
}

#[test]
fn structured_selector_converts() {
    let ls: LabelSelector = serde_json::from_str(
        r#"{"matchLabels":{"app":"web"},"matchExpressions":[{"key":"env","operator":"In","values":["a"]}]}"#,
    )
    .unwrap();
    let s = ls.to_selector();
    assert!(s.matches(&labels(&[("app", "web"), ("env", "a")])));
    assert!(!s.matches(&labels(&[("app", "web")])));
}

#[test]
fn field_selector() {
    let f = FieldSelector::parse("spec.nodeName=n1,metadata.namespace!=kube").unwrap();
    let get = |node: &'static str, ns: &'static str| {
        move |field: &str| match field {
            "spec.nodeName" => Some(node.to_string()),
            "metadata.namespace" => Some(ns.to_string()),
            _ => None,
        }
    };
    assert!(f.matches(get("n1", "default")));
    assert!(!f.matches(get("n2", "default")));
    assert!(!f.matches(get("n1", "kube")));
    assert!(FieldSelector::parse("nonsense").is_err());
}
