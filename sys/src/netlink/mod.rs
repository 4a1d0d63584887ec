//! A small synchronous rtnetlink layer, shaped like the `rtnetlink` crate:
//! one folder per object (`link/`, `addr/`, `route/`, `neigh/`), where
//! building a request is pure (`.message()`, unit-testable without root) and
//! `.execute(&mut handle)` does the I/O on a [`Handle`].
//!
//! It is synchronous on purpose: keel-cni is a short-lived process whose
//! start-up time matters, and the agent, the lab and the tests call it from
//! blocking threads (often one that entered another namespace).
//! Kernel errors are classified in one place ([`NetlinkError::is_exists`],
//! [`NetlinkError::is_not_found`]).

pub mod addr;
mod error;
mod handle;
pub mod link;
pub mod neigh;
pub mod route;

pub use error::NetlinkError;
pub use handle::{Change, Handle};

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (case-insensitive).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut mac {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

fn mac_from(bytes: &[u8]) -> Option<Mac> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests;
