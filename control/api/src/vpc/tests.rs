use super::*;

#[test]
fn a_request_round_trips_in_the_documented_shape() {
    let req = Request::new(
        vec![Route {
            destination: "10.244.1.0/24".parse().unwrap(),
            next_hop: "172.30.0.11".parse().unwrap(),
            node: "node-1".into(),
        }],
        None,
    );
    let json = serde_json::to_value(&req).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "apiVersion": "vpc.keel.dev/v1",
            "desired": [{"destination": "10.244.1.0/24", "nextHop": "172.30.0.11", "node": "node-1"}],
            "current": null,
        })
    );
    assert_eq!(Request::parse(json.to_string().as_bytes()).unwrap(), req);
}

#[test]
fn requests_of_another_version_or_with_twice_the_same_route_are_refused() {
    let err =
        Request::parse(br#"{"apiVersion": "vpc.keel.dev/v2", "desired": [], "current": null}"#)
            .unwrap_err();
    assert!(matches!(err, ContractError::Version { .. }), "{err}");
    let twice = br#"{"apiVersion": "vpc.keel.dev/v1", "current": null, "desired": [
            {"destination": "10.244.1.0/24", "nextHop": "172.30.0.11"},
            {"destination": "10.244.1.0/24", "nextHop": "172.30.0.12"}]}"#;
    assert_eq!(
        Request::parse(twice).unwrap_err().to_string(),
        "desired: 10.244.1.0/24 is listed twice"
    );
}

#[test]
fn a_response_with_failures_parses_and_answers_what_it_holds() {
    let r = Response::parse(
        br#"{"routes": [{"destination": "10.244.0.0/24", "nextHop": "172.30.0.11"}],
                 "failed": [{"destination": "10.244.1.0/24", "reason": "RouteLimitExceeded",
                             "message": "route table rtb-1 holds 50 of 50 routes"}]}"#,
    )
    .unwrap();
    assert!(r.holds(
        "10.244.0.0/24".parse().unwrap(),
        "172.30.0.11".parse().unwrap()
    ));
    assert!(!r.holds(
        "10.244.0.0/24".parse().unwrap(),
        "172.30.0.12".parse().unwrap()
    ));
    assert_eq!(r.failed[0].reason, "RouteLimitExceeded");
    // `failed` may be left out.
    assert!(
        Response::parse(br#"{"routes": []}"#)
            .unwrap()
            .failed
            .is_empty()
    );
}

#[test]
fn a_broken_response_names_the_field() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "."),
        (b"{\"routes\": []} trailing", "."),
        (br#"{"routes": [{"destination": "10.244.0.0", "nextHop": "172.30.0.11"}]}"#, "routes[0].destination"),
        (br#"{"routes": [], "failed": [{"destination": "10.244.0.0/24"}]}"#, "failed[0]"),
        (br#"{"routes": [], "extra": 1}"#, "extra"),
        (br#"{"routes": [], "failed": [{"destination": "10.244.0.0/24", "reason": "quota exceeded"}]}"#, "failed[0].reason"),
        (br#"{"routes": [{"destination": "10.244.0.0/24", "nextHop": "172.30.0.11"},
                             {"destination": "10.244.0.0/24", "nextHop": "172.30.0.11"}]}"#, "routes"),
    ];
    for (input, field) in cases {
        let err = Response::parse(input).unwrap_err().to_string();
        assert!(
            err.starts_with(field),
            "{}: {err} should name {field}",
            String::from_utf8_lossy(input)
        );
    }
}

#[test]
fn condition_reasons_follow_kubernetes_syntax() {
    for ok in ["RouteLimitExceeded", "A", "Quota_1", "x:y,z"] {
        assert!(is_reason(ok), "{ok}");
    }
    for bad in [
        "",
        "1Route",
        "Route limit",
        "Route-",
        "Route:",
        &"a".repeat(1025),
    ] {
        assert!(!is_reason(bad), "{bad}");
    }
}
