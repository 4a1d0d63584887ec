//! The CNI protocol's data: spec versions, the `CNI_*` environment, the
//! network configuration on stdin, results (converted between versions)
//! and the error object with the spec's codes.

pub mod config;
pub mod env;
pub mod error;
pub mod result;
pub mod version;

pub use config::{Attachment, NetConf};
pub use env::{CniArgs, CniEnv, Command};
pub use error::{CniError, code};
pub use result::{CniResult, Interface, IpConfig, RouteConf};
pub use version::CniVersion;
