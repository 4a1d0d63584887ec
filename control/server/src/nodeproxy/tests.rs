use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use keel_api::pki::Validity;

use super::NodeDialer;
use crate::pki::ClusterCa;

#[test]
fn the_client_certificate_is_renewed_two_thirds_into_its_life() {
    let t0 = SystemTime::now();
    let ca = Arc::new(ClusterCa::generate(t0).unwrap());
    let life = Duration::from_secs(3000);
    let d = NodeDialer::new(ca, life, t0).unwrap();
    let first = d.identity_at(t0).unwrap().cert_der();
    // Before two thirds: the same certificate.
    let same = d
        .identity_at(t0 + Duration::from_secs(1999))
        .unwrap()
        .cert_der();
    assert_eq!(first, same);
    // From two thirds on: a new one, valid a full lifetime from then.
    let later = t0 + Duration::from_secs(2000);
    let renewed = d.identity_at(later).unwrap().cert_der();
    assert_ne!(first, renewed);
    let v = Validity::of(&renewed).unwrap();
    let not_after = Validity::of(&first).unwrap().not_after;
    assert!(v.not_after > not_after, "{v:?}");
    // And it stays until its own renewal point.
    assert_eq!(
        d.identity_at(later + Duration::from_secs(1000))
            .unwrap()
            .cert_der(),
        renewed
    );
}

#[test]
fn port_forward_streams_pair_by_request_id_or_as_the_kubelet_does() {
    use super::portforward::{Opened, opened};
    let h = |pairs: &[(&str, &str)]| -> super::spdy::Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        opened(
            1,
            &h(&[
                ("streamtype", "error"),
                ("port", "9000"),
                ("requestid", "7")
            ])
        ),
        Ok(Opened {
            error: true,
            port: 9000,
            request: "7".into()
        })
    );
    // Without a request id: the data stream goes with the error stream
    // two ids before it.
    assert_eq!(
        opened(5, &h(&[("streamtype", "error"), ("port", "80")]))
            .unwrap()
            .request,
        "5"
    );
    assert_eq!(
        opened(7, &h(&[("streamtype", "data"), ("port", "80")]))
            .unwrap()
            .request,
        "5"
    );
    for (bad, field) in [
        (h(&[("port", "80")]), "streamtype"),
        (h(&[("streamtype", "stdin"), ("port", "80")]), "streamtype"),
        (h(&[("streamtype", "data")]), "port"),
        (h(&[("streamtype", "data"), ("port", "0")]), "port"),
        (h(&[("streamtype", "data"), ("port", "70000")]), "port"),
    ] {
        let e = opened(1, &bad).unwrap_err();
        assert!(e.starts_with(field), "{bad:?}: {e}");
    }
}
