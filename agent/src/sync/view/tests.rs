use super::*;

fn svc(name: &str, rv: &str) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "d", "resourceVersion": rv, "uid": format!("u-{name}")},
            "spec": {"ports": [{"port": 80}]}
        }))
        .unwrap(),
    )
}

#[test]
fn a_relist_reports_only_what_differs_and_keeps_the_rest_shared() {
    let mut m = Objects::new();
    let mut ch = BTreeSet::new();
    apply(
        &mut m,
        Update::Replace(vec![svc("a", "1"), svc("b", "1"), svc("c", "1")]),
        &mut ch,
    );
    assert_eq!(ch.len(), 3);
    let a = m.get("d/a").unwrap().clone();
    ch.clear();
    apply(
        &mut m,
        Update::Replace(vec![svc("a", "1"), svc("b", "2"), svc("e", "3")]),
        &mut ch,
    );
    assert_eq!(
        ch.into_iter().collect::<Vec<_>>(),
        ["d/b", "d/c", "d/e"],
        "b changed, c went, e came; a is the same version"
    );
    assert!(Arc::ptr_eq(&a, m.get("d/a").unwrap()), "a is still shared");
}

#[test]
fn upserts_of_the_same_version_and_deletes_of_nothing_are_silent() {
    let mut m = Objects::new();
    let mut ch = BTreeSet::new();
    apply(&mut m, Update::Upsert(svc("a", "5")), &mut ch);
    apply(&mut m, Update::Upsert(svc("a", "5")), &mut ch);
    apply(&mut m, Update::Delete("d/zz".into()), &mut ch);
    assert_eq!(ch.len(), 1);
    ch.clear();
    apply(&mut m, Update::Upsert(svc("a", "6")), &mut ch);
    apply(&mut m, Update::Delete("d/a".into()), &mut ch);
    assert_eq!(ch.len(), 1);
    assert!(m.is_empty());
}

#[test]
fn subscribers_hear_the_present_then_only_changes() {
    let views = Views::default();
    let mut v = View::default();
    v.services.insert("d/a".into(), svc("a", "1"));
    views.publish(v.clone(), &Changes::default());
    let heard = Arc::new(Mutex::new(Vec::new()));
    let h = heard.clone();
    views.subscribe(move |_, c| h.lock().unwrap().push(c.services.clone()));
    v.services.insert("d/b".into(), svc("b", "1"));
    let changes = Changes {
        services: ["d/b".to_string()].into(),
        ..Default::default()
    };
    views.publish(v, &changes);
    views.publish(views.current(), &Changes::default());
    let heard = heard.lock().unwrap();
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert_eq!(heard[0].iter().collect::<Vec<_>>(), ["d/a"]);
    assert_eq!(heard[1].iter().collect::<Vec<_>>(), ["d/b"]);
    assert_eq!(views.current().services.len(), 2);
}
