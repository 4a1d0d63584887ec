//! The CNI spec versions keel-cni speaks, and what each one allows
//! (CHECK from 0.4.0, GC and STATUS from 1.1.0).

use std::{fmt, str::FromStr};

/// A supported spec version, ordered oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CniVersion {
    V0_3_1,
    V0_4_0,
    V1_0_0,
    V1_1_0,
}

impl CniVersion {
    pub const ALL: [CniVersion; 4] = [
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
        CniVersion::V1_1_0,
    ];
    pub const LATEST: CniVersion = CniVersion::V1_1_0;

    pub fn as_str(self) -> &'static str {
        match self {
            CniVersion::V0_3_1 => "0.3.1",
            CniVersion::V0_4_0 => "0.4.0",
            CniVersion::V1_0_0 => "1.0.0",
            CniVersion::V1_1_0 => "1.1.0",
        }
    }

    /// CHECK was added in 0.4.0.
    pub fn allows_check(self) -> bool {
        self >= CniVersion::V0_4_0
    }

    /// GC and STATUS were added in 1.1.0.
    pub fn allows_gc_and_status(self) -> bool {
        self >= CniVersion::V1_1_0
    }

    /// Results before 1.0.0 carry `ips[].version`.
    pub fn ips_have_version(self) -> bool {
        self < CniVersion::V1_0_0
    }

    /// `interfaces[].mtu` appeared in 1.1.0.
    pub fn interfaces_have_mtu(self) -> bool {
        self >= CniVersion::V1_1_0
    }

    pub fn supported_list() -> String {
        CniVersion::ALL
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for CniVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CniVersion {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        CniVersion::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests;
