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
