use std::time::{Duration, Instant};

use hickory_proto::rr::{
    Name, RData, Record,
    rdata::{A, SOA},
};

use super::*;

fn q(name: &str) -> Query {
    Query::query(Name::from_ascii(name).unwrap(), RecordType::A)
}

fn answer(name: &str, ttl: u32) -> Message {
    let mut m = Message::new();
    m.set_message_type(MessageType::Response).add_query(q(name));
    m.add_answer(Record::from_rdata(
        Name::from_ascii(name).unwrap(),
        ttl,
        RData::A(A("192.0.2.1".parse().unwrap())),
    ));
    m
}

fn negative(code: ResponseCode, soa_ttl: Option<u32>) -> Message {
    let mut m = Message::new();
    m.set_message_type(MessageType::Response)
        .set_response_code(code);
    if let Some(t) = soa_ttl {
        let n = Name::from_ascii("example.").unwrap();
        m.add_name_server(Record::from_rdata(
            n.clone(),
            t,
            RData::SOA(SOA::new(n.clone(), n, 1, 1, 1, 1, t)),
        ));
    }
    m
}

#[test]
fn how_long_answers_are_kept() {
    assert_eq!(cache_ttl(&answer("a.example.", 10)), Some(10));
    assert_eq!(
        cache_ttl(&answer("a.example.", 3600)),
        Some(MAX_POSITIVE_TTL)
    );
    assert_eq!(cache_ttl(&answer("a.example.", 0)), Some(0));
    assert_eq!(
        cache_ttl(&negative(ResponseCode::NXDomain, Some(3))),
        Some(3)
    );
    assert_eq!(
        cache_ttl(&negative(ResponseCode::NXDomain, Some(900))),
        Some(MAX_NEGATIVE_TTL)
    );
    assert_eq!(
        cache_ttl(&negative(ResponseCode::NoError, None)),
        Some(MAX_NEGATIVE_TTL),
        "NODATA"
    );
    assert_eq!(cache_ttl(&negative(ResponseCode::ServFail, None)), None);
    assert_eq!(cache_ttl(&negative(ResponseCode::Refused, None)), None);
}

#[test]
fn cache_expires_ages_and_stays_bounded() {
    let t0 = Instant::now();
    let mut c = Cache::new(2);
    c.put(&q("a.example."), Arc::new(answer("a.example.", 20)), t0);
    // Keys ignore case.
    let hit = c
        .get(&q("A.Example."), t0 + Duration::from_secs(5))
        .unwrap();
    let reply = Reply {
        msg: hit.msg,
        age: hit.age,
    };
    assert_eq!(
        reply.answers().next().unwrap().ttl(),
        15,
        "TTL lowered by the entry's age"
    );
    assert!(
        c.get(&q("a.example."), t0 + Duration::from_secs(20))
            .is_none(),
        "expired"
    );
    assert!(c.is_empty());
    // Zero TTL and failures are not kept.
    c.put(&q("z.example."), Arc::new(answer("z.example.", 0)), t0);
    c.put(
        &q("f.example."),
        Arc::new(negative(ResponseCode::ServFail, None)),
        t0,
    );
    assert!(c.is_empty());
    // Full: the oldest goes.
    for n in ["a", "b", "c"] {
        let name = format!("{n}.example.");
        c.put(&q(&name), Arc::new(answer(&name, 30)), t0);
    }
    assert_eq!(c.len(), 2);
    assert!(c.get(&q("a.example."), t0).is_none());
    assert!(c.get(&q("c.example."), t0).is_some());
    // Full with an expired entry: that one goes first.
    let mut c = Cache::new(2);
    c.put(&q("old.example."), Arc::new(answer("old.example.", 1)), t0);
    c.put(
        &q("keep.example."),
        Arc::new(answer("keep.example.", 30)),
        t0,
    );
    c.put(
        &q("new.example."),
        Arc::new(answer("new.example.", 30)),
        t0 + Duration::from_secs(2),
    );
    assert!(
        c.get(&q("keep.example."), t0 + Duration::from_secs(2))
            .is_some()
    );
    assert!(
        c.get(&q("new.example."), t0 + Duration::from_secs(2))
            .is_some()
    );
}

#[test]
fn a_name_asked_in_the_last_tenth_of_its_life_is_refreshed_once() {
    let t0 = Instant::now();
    let mut c = Cache::new(4);
    c.put(&q("a.example."), Arc::new(answer("a.example.", 30)), t0);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    assert!(!c.get(&q("a.example."), at(26_000)).unwrap().refresh);
    let hit = c.get(&q("a.example."), at(27_100)).unwrap();
    assert!(hit.refresh, "under 3 s of 30 left");
    assert_eq!(hit.age, 27);
    assert!(
        !c.get(&q("a.example."), at(28_000)).unwrap().refresh,
        "handed out once"
    );
    // The refreshed answer starts a new life.
    c.put(
        &q("a.example."),
        Arc::new(answer("a.example.", 30)),
        at(28_000),
    );
    let hit = c.get(&q("a.example."), at(31_000)).unwrap();
    assert!(!hit.refresh);
    assert_eq!(hit.age, 3);
    // A short negative entry: the window is a tenth of its 5 s.
    c.put(
        &q("n.example."),
        Arc::new(negative(ResponseCode::NXDomain, Some(5))),
        t0,
    );
    assert!(!c.get(&q("n.example."), at(4_400)).unwrap().refresh);
    assert!(c.get(&q("n.example."), at(4_600)).unwrap().refresh);
}

#[tokio::test]
async fn no_upstream_is_an_error() {
    let f = Forwarder::new(vec![], 4);
    assert!(matches!(
        f.resolve(&q("a.example.")).await,
        Err(DnsError::NoUpstream)
    ));
    assert_eq!(f.cached(), 0);
}
