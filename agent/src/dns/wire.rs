//! Whole answers kept on the wire, in front of the resolver: a question
//! asked again (the same bytes but for its 16-bit id) is answered by
//! copying the stored answer and writing the new id into it, without
//! parsing or building a message, as dnsmasq does.
//!
//! What an answer was made from decides how long it holds:
//! - a cluster name's answer ([`Cacheable::View`]) comes from the agent's
//!   view alone, so it holds until the next view is published: an entry
//!   records the views' generation read *before* the view it was computed
//!   from ([`crate::sync::view::Views::generation`]) and is served only
//!   while the generation is the same, so an answer racing a change is
//!   dropped, never kept past it.
//! - an upstream's answer ([`Cacheable::Upstream`]) holds for nine tenths
//!   of the life the forwarder's cache gives it, so the last tenth reaches
//!   the forwarder and its prefetch keeps a name in use from expiring; its
//!   records' TTLs are lowered by the seconds it has been kept as it is
//!   copied out (the OPT record's TTL field carries EDNS flags and is left
//!   alone).
//!
//! The key is the request as sent: a resolver that varies the case of the
//! name (0x20) gets an entry per spelling, each echoing its own question.
//! When full, expired entries go first, then everything.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The DNS header: id, flags, four counts.
const HEADER: usize = 12;
/// The OPT pseudo-record (EDNS), whose TTL field is not a TTL.
const OPT: u16 = 41;

/// How an answer may be kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cacheable {
    /// Not at all (a failure, a truncated answer, one mixing the view and
    /// an upstream).
    No,
    /// Until the view changes.
    View,
    /// For `life` seconds at most.
    Upstream { life: u32 },
}

#[derive(Debug)]
enum Holds {
    Generation(u64),
    Until(Instant),
}

#[derive(Debug)]
struct Entry {
    answer: Box<[u8]>,
    holds: Holds,
    stored: Instant,
    /// Where the records' TTLs are in `answer` (upstream answers only).
    ttls: Box<[u16]>,
}

type Map = HashMap<Box<[u8]>, Entry, foldhash::fast::RandomState>;

/// The cache. Shared by the UDP loop (lookups) and the tasks that answer
/// misses (stores).
pub struct WireCache {
    capacity: usize,
    map: Mutex<Map>,
}

impl WireCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            map: Mutex::new(Map::default()),
        }
    }

    /// Entries held (stale ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the stored answer to `req` into `out` (its id set to the
    /// request's, its TTLs lowered by its age) and says whether there was
    /// one still good at `now` with the views at `generation`.
    pub fn answer(&self, req: &[u8], now: Instant, generation: u64, out: &mut Vec<u8>) -> bool {
        if req.len() < HEADER {
            return false;
        }
        let map = self.lock();
        let Some(e) = map.get(&req[2..]) else {
            return false;
        };
        let fresh = match e.holds {
            Holds::Generation(g) => g == generation,
            Holds::Until(t) => now < t,
        };
        if !fresh {
            return false;
        }
        out.clear();
        out.extend_from_slice(&e.answer);
        out[..2].copy_from_slice(&req[..2]);
        let age = now.saturating_duration_since(e.stored).as_secs() as u32;
        if age > 0 {
            for &at in &e.ttls {
                let at = usize::from(at);
                let ttl = u32::from_be_bytes(out[at..at + 4].try_into().expect("4 bytes"));
                out[at..at + 4].copy_from_slice(&ttl.saturating_sub(age).to_be_bytes());
            }
        }
        true
    }

    /// Keeps `answer`, the response to `req`, as `how` allows;
    /// `generation` is the views' generation read before the view the
    /// answer came from.
    pub fn store(&self, req: &[u8], answer: &[u8], how: Cacheable, generation: u64, now: Instant) {
        if req.len() < HEADER || answer.len() < HEADER || answer.len() > usize::from(u16::MAX) {
            return;
        }
        let (holds, ttls) = match how {
            Cacheable::No => return,
            Cacheable::View => (Holds::Generation(generation), Box::default()),
            Cacheable::Upstream { life } => {
                let life = life - life / 10;
                if life == 0 {
                    return;
                }
                let Some(ttls) = ttl_offsets(answer) else {
                    return;
                };
                (
                    Holds::Until(now + Duration::from_secs(u64::from(life))),
                    ttls.into_boxed_slice(),
                )
            }
        };
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&req[2..]) {
            // The entries of older views, and expired ones, go first.
            let newest = map
                .values()
                .filter_map(|e| match e.holds {
                    Holds::Generation(g) => Some(g),
                    Holds::Until(_) => None,
                })
                .chain([generation])
                .max()
                .unwrap_or(generation);
            map.retain(|_, e| match e.holds {
                Holds::Generation(g) => g == newest,
                Holds::Until(t) => now < t,
            });
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(
            req[2..].into(),
            Entry {
                answer: answer.into(),
                holds,
                stored: now,
                ttls,
            },
        );
    }
}

/// The offsets of the TTL fields of every resource record in `msg` but
/// the OPT record's; None when `msg` does not parse to its end.
pub fn ttl_offsets(msg: &[u8]) -> Option<Vec<u16>> {
    let count = |i: usize| usize::from(u16::from_be_bytes([msg[i], msg[i + 1]]));
    if msg.len() < HEADER {
        return None;
    }
    let (questions, records) = (count(4), count(6) + count(8) + count(10));
    let mut at = HEADER;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    let mut ttls = Vec::with_capacity(records);
    for _ in 0..records {
        at = skip_name(msg, at)?;
        let fixed = msg.get(at..at + 10)?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let rdlen = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        if rtype != OPT {
            ttls.push(u16::try_from(at + 4).ok()?);
        }
        at += 10 + rdlen;
    }
    (at == msg.len()).then_some(ttls)
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            // A pointer ends the name.
            0xC0 => {
                msg.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests;
