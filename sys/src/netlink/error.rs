//! Netlink errors, and the one place where kernel errnos are classified.

use std::{io, path::PathBuf};

use crate::ns::NsError;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused the request (a NACK with an errno).
    #[error("{what}: {source}")]
    Kernel {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: netlink socket: {source}")]
    Socket {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: decoding the kernel's answer: {reason}")]
    Decode { what: String, reason: String },
    #[error("{what}: {reason}")]
    Unexpected { what: String, reason: String },
    #[error("opening a netlink socket in {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: NsError,
    },
}

impl NetlinkError {
    /// The errno the kernel answered with, if it answered with one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { source, .. } | NetlinkError::Socket { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }

    /// The object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// The object (or the link it refers to) does not exist: ENODEV for
    /// links, ESRCH for routes, EADDRNOTAVAIL for addresses, ENOENT for
    /// neighbours.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV | libc::ESRCH | libc::EADDRNOTAVAIL | libc::ENOENT | libc::ENXIO)
        )
    }
}
