use std::net::Ipv4Addr;

use keel_ebpf_common::lb::maglev_size;

use super::*;
use crate::lb::model::Proto;

fn backend(i: u32) -> Addr {
    let ip = Ipv4Addr::from(0x0af4_0000 + i); // 10.244.x.y
    Addr::new(ip, 8080, Proto::Tcp)
}

fn backends(ids: impl IntoIterator<Item = u32>) -> Vec<Addr> {
    ids.into_iter().map(backend).collect()
}

/// Each entry's backend (not slot number), for comparing tables.
fn owners(slots: &[Addr], t: &[u16]) -> Vec<Addr> {
    t.iter().map(|&s| slots[s as usize - 1]).collect()
}

#[test]
fn every_entry_is_filled_and_shares_are_even() {
    for n in [1usize, 2, 3, 10, 16, 17, 50] {
        let slots = backends(0..n as u32);
        let m = maglev_size(n);
        let t = table(&slots, m);
        assert_eq!(t.len(), m as usize);
        let mut share = vec![0usize; n];
        for &s in &t {
            assert!((1..=n as u16).contains(&s), "n={n}: entry {s}");
            share[s as usize - 1] += 1;
        }
        // Maglev fills round-robin: shares differ by at most one... up to
        // the entries left over when the table runs out.
        let (lo, hi) = (*share.iter().min().unwrap(), *share.iter().max().unwrap());
        assert!(hi - lo <= 1, "n={n}: shares {lo}..{hi}");
    }
    assert!(table(&[], 1021).is_empty());
}

#[test]
fn the_table_depends_on_the_set_not_the_order() {
    let slots = backends(0..10);
    let m = maglev_size(10);
    let t = table(&slots, m);
    let mut reversed = slots.clone();
    reversed.reverse();
    let r = table(&reversed, m);
    assert_ne!(t, r, "slot numbers follow the caller's order");
    assert_eq!(owners(&slots, &t), owners(&reversed, &r));
}

/// Entries that changed owner for reasons other than the change itself,
/// as a fraction of the table.
fn extra_disruption(before: &[Addr], after: &[Addr], changed: Addr) -> f64 {
    let (mb, ma) = (maglev_size(before.len()), maglev_size(after.len()));
    assert_eq!(mb, ma, "same M on both sides");
    let b = owners(before, &table(before, mb));
    let a = owners(after, &table(after, ma));
    let extra = b
        .iter()
        .zip(&a)
        .filter(|(x, y)| x != y && **x != changed && **y != changed)
        .count();
    extra as f64 / mb as f64
}

#[test]
fn a_backend_change_moves_at_most_one_percent_more_than_its_share() {
    // M > 100·N in every case (maglev_size picks M ≥ 1000·N, see
    // MAGLEV_SIZES for why 100·N alone is not enough); every size class.
    let mut worst = 0f64;
    for n in [2u32, 3, 5, 10, 16, 17, 20, 32, 33, 64, 65] {
        for victim in [0, n / 2, n - 1] {
            let before = backends(0..n);
            assert!(maglev_size(n as usize) as usize > 100 * n as usize);
            if maglev_size(before.len()) != maglev_size(before.len() - 1) {
                continue; // crossing a size class: a new M reshuffles by design
            }
            let after: Vec<Addr> = before
                .iter()
                .copied()
                .filter(|b| *b != backend(victim))
                .collect();
            let removed = extra_disruption(&before, &after, backend(victim));
            let added = extra_disruption(&after, &before, backend(victim));
            worst = worst.max(removed).max(added);
            assert!(removed <= 0.01, "n={n} remove {victim}: {removed}");
            assert!(added <= 0.01, "n={n} add {victim}: {added}");
        }
    }
    eprintln!("worst extra disruption {:.4}%", worst * 100.0);
}

#[test]
fn chunks_pad_the_last_one_and_digests_differ() {
    let slots = backends(0..10);
    let t = table(&slots, 2039); // any prime works; 2 chunks
    let c = chunks(&t);
    assert_eq!(c.len(), 2);
    assert_eq!(&c[0].slots[..], &t[..1024]);
    assert_eq!(&c[1].slots[..2039 - 1024], &t[1024..]);
    assert!(c[1].slots[2039 - 1024..].iter().all(|&s| s == 0));
    assert_ne!(chunk_digest(&c[0]), chunk_digest(&c[1]));
    assert_eq!(chunk_digest(&c[0]), chunk_digest(&chunks(&t)[0]));
}
