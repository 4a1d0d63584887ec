use std::time::{Duration, SystemTime};

use keel_api::{Pod, meta::Time};
use serde_json::json;

use super::*;

#[test]
fn events_section_is_kubectls() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    assert_eq!(events_section(&[], now), "Events:       <none>\n");
    let mk = |name: &str, reason: &str, ago: u64, count: i32| {
        let mut e: Event = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web"},
            "reason": reason, "message": format!("{reason} happened"), "type": "Normal",
            "source": {"component": "kubelet"}, "count": count
        }))
        .unwrap();
        e.first_timestamp = Some(Time(now - Duration::from_secs(600)));
        e.last_timestamp = Some(Time(now - Duration::from_secs(ago)));
        e
    };
    let out = events_section(
        &[mk("b", "Unhealthy", 5, 3), mk("a", "Scheduled", 600, 1)],
        now,
    );
    assert_eq!(
        out,
        "Events:\n\
         \x20 Type     Reason      Age                From      Message\n\
         \x20 ----     ------      ----               ----      -------\n\
         \x20 Normal   Scheduled   10m                kubelet   Scheduled happened\n\
         \x20 Normal   Unhealthy   5s (x3 over 10m)   kubelet   Unhealthy happened\n"
    );
}

#[test]
fn events_query_is_kubectls_field_selector() {
    let mut p = Pod::default();
    p.metadata.name = "web".into();
    p.metadata.namespace = "default".into();
    p.metadata.uid = "u1".into();
    let (ns, sel) = events_query(&AnyObject::Pod(p));
    assert_eq!(ns, "default");
    assert_eq!(
        sel,
        "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Pod,involvedObject.uid=u1"
    );
}
