use super::*;

#[test]
fn message_round_trip() {
    let cases = [
        Route::direct("10.1.0.5/32".parse().unwrap(), 7),
        Route::via(
            "0.0.0.0/0".parse().unwrap(),
            "10.1.0.1".parse().unwrap(),
            Some(3),
        ),
        Route {
            onlink: true,
            table: 1000,
            ..Route::via(
                "10.2.0.0/24".parse().unwrap(),
                "10.9.0.2".parse().unwrap(),
                Some(4),
            )
        },
    ];
    for route in cases {
        assert_eq!(
            Route::from_message(&route.to_message()),
            Some(route.clone()),
            "{route:?}"
        );
    }
}

#[test]
fn default_route_has_no_destination_attribute() {
    let msg = Route::via(
        "0.0.0.0/0".parse().unwrap(),
        "10.1.0.1".parse().unwrap(),
        None,
    )
    .to_message();
    assert!(
        !msg.attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_)))
    );
    assert_eq!(msg.header.destination_prefix_length, 0);
}
