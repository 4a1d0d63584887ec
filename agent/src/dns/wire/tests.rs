use std::{
    net::Ipv4Addr,
    str::FromStr,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Edns, Message, MessageType, Query},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, SOA},
    },
};

use super::*;

fn request(id: u16, name: &str) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id)
        .set_recursion_desired(true)
        .add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    m.to_vec().unwrap()
}

/// An answer with two A records (TTLs 30 and 20), an SOA in authority
/// (TTL 5) and EDNS (whose OPT "TTL" is flags).
fn answer(id: u16, name: &str) -> Vec<u8> {
    let n = Name::from_str(name).unwrap();
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Response)
        .add_query(Query::query(n.clone(), RecordType::A))
        .add_answer(Record::from_rdata(
            n.clone(),
            30,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
        ))
        .add_answer(Record::from_rdata(
            n.clone(),
            20,
            RData::A(A(Ipv4Addr::new(192, 0, 2, 2))),
        ))
        .add_name_server(Record::from_rdata(
            Name::from_str("example.").unwrap(),
            5,
            RData::SOA(SOA::new(
                Name::from_str("ns.example.").unwrap(),
                Name::from_str("root.example.").unwrap(),
                1,
                2,
                3,
                4,
                5,
            )),
        ));
    let mut edns = Edns::new();
    edns.set_max_payload(1232).set_dnssec_ok(true);
    m.set_edns(edns);
    m.to_vec().unwrap()
}

fn ttls(bytes: &[u8]) -> Vec<u32> {
    let m = Message::from_vec(bytes).unwrap();
    m.answers()
        .iter()
        .chain(m.name_servers())
        .map(|r| r.ttl())
        .collect()
}

#[test]
fn ttl_offsets_find_every_record_but_the_opt() {
    let a = answer(1, "www.example.");
    let at = ttl_offsets(&a).unwrap();
    let read: Vec<u32> = at
        .iter()
        .map(|&o| u32::from_be_bytes(a[usize::from(o)..usize::from(o) + 4].try_into().unwrap()))
        .collect();
    assert_eq!(read, [30, 20, 5], "the OPT record's flags are not a TTL");
    // Cut anywhere, or with a label type DNS does not use: no offsets.
    assert_eq!(ttl_offsets(&a[..a.len() - 1]), None);
    assert_eq!(ttl_offsets(&a[..11]), None);
    let mut bad = a.clone();
    bad[12] = 0x80;
    assert_eq!(ttl_offsets(&bad), None);
    let mut longer = a.clone();
    longer.push(0);
    assert_eq!(ttl_offsets(&longer), None, "trailing bytes");
}

#[test]
fn a_view_answer_is_served_with_the_askers_id_until_the_view_moves() {
    let c = WireCache::new(10);
    let now = Instant::now();
    let mut out = Vec::new();
    assert!(!c.answer(&request(7, "db.x."), now, 3, &mut out));
    c.store(
        &request(7, "db.x."),
        &answer(7, "db.x."),
        Cacheable::View,
        3,
        now,
    );
    assert!(c.answer(
        &request(0xBEEF, "db.x."),
        now + Duration::from_secs(60),
        3,
        &mut out
    ));
    assert_eq!(out, answer(0xBEEF, "db.x."), "only the id differs");
    assert_eq!(ttls(&out), [30, 20, 5], "a view answer's TTLs do not age");
    // Another question (name, spelling, flags) is another entry.
    let mut upper = request(1, "db.x.");
    upper[13..15].copy_from_slice(b"DB");
    assert!(!c.answer(&upper, now, 3, &mut out));
    let mut no_rd = request(1, "db.x.");
    no_rd[2] &= !0x01;
    assert!(!c.answer(&no_rd, now, 3, &mut out));
    // The next view: gone.
    assert!(!c.answer(&request(1, "db.x."), now, 4, &mut out));
    // Too short to be a question.
    assert!(!c.answer(&[0, 1, 2], now, 3, &mut out));
}

#[test]
fn an_upstream_answer_ages_and_leaves_its_last_tenth_to_the_forwarder() {
    let c = WireCache::new(10);
    let now = Instant::now();
    let mut out = Vec::new();
    let q = request(9, "www.example.");
    c.store(
        &q,
        &answer(9, "www.example."),
        Cacheable::Upstream { life: 20 },
        0,
        now,
    );
    assert!(c.answer(&q, now, 0, &mut out));
    assert_eq!(ttls(&out), [30, 20, 5]);
    assert!(c.answer(&q, now + Duration::from_millis(2500), 5, &mut out));
    assert_eq!(
        ttls(&out),
        [28, 18, 3],
        "lowered by whole seconds kept; views do not matter"
    );
    assert!(c.answer(&q, now + Duration::from_secs(7), 0, &mut out));
    assert_eq!(ttls(&out), [23, 13, 0], "never below zero");
    assert!(c.answer(&q, now + Duration::from_millis(17_999), 0, &mut out));
    assert!(
        !c.answer(&q, now + Duration::from_secs(18), 0, &mut out),
        "the last tenth of 20 s goes to the forwarder (its prefetch)"
    );
    // A life too short to keep, and answers that may not be kept.
    let q2 = request(9, "short.example.");
    c.store(
        &q2,
        &answer(9, "short.example."),
        Cacheable::Upstream { life: 0 },
        0,
        now,
    );
    c.store(&q2, &answer(9, "short.example."), Cacheable::No, 0, now);
    assert!(!c.answer(&q2, now, 0, &mut out));
    // An answer that does not parse is not kept (its TTLs are unknown).
    c.store(&q2, &[0u8; 20], Cacheable::Upstream { life: 10 }, 0, now);
    assert!(!c.answer(&q2, now, 0, &mut out));
}

#[test]
fn when_full_older_views_and_expired_answers_go_first() {
    let c = WireCache::new(3);
    let now = Instant::now();
    let mut out = Vec::new();
    let names = ["a.x.", "b.x.", "c.x.", "d.x.", "e.x."];
    c.store(
        &request(1, names[0]),
        &answer(1, names[0]),
        Cacheable::View,
        1,
        now,
    );
    c.store(
        &request(1, names[1]),
        &answer(1, names[1]),
        Cacheable::Upstream { life: 2 },
        1,
        now,
    );
    c.store(
        &request(1, names[2]),
        &answer(1, names[2]),
        Cacheable::View,
        2,
        now,
    );
    assert_eq!(c.len(), 3);
    // Full: a's view is older and b has expired by then.
    let later = now + Duration::from_secs(5);
    c.store(
        &request(1, names[3]),
        &answer(1, names[3]),
        Cacheable::View,
        2,
        later,
    );
    assert_eq!(c.len(), 2);
    assert!(c.answer(&request(5, names[2]), later, 2, &mut out));
    assert!(c.answer(&request(5, names[3]), later, 2, &mut out));
    // Full of good entries: it starts again.
    c.store(
        &request(1, names[4]),
        &answer(1, names[4]),
        Cacheable::View,
        2,
        later,
    );
    c.store(
        &request(1, names[0]),
        &answer(1, names[0]),
        Cacheable::View,
        2,
        later,
    );
    assert_eq!(c.len(), 1);
    assert!(c.answer(&request(5, names[0]), later, 2, &mut out));
}
