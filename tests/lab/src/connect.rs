//! The way into a lab from outside it: a connector for keel-api's client
//! (its [`Connect`] hook) that opens each TCP connection on a short-lived
//! thread inside a network namespace — the lab's control namespace — so
//! keelctl on the host, a test or a benchmark can talk to a keel-control
//! that is only reachable there, without connecting the two namespaces.
//! The socket stays in the namespace it was opened in, whichever thread
//! uses it afterwards.

use std::{
    io,
    net::TcpStream,
    path::{Path, PathBuf},
    sync::Arc,
};

use keel_api::client::{CONNECT_TIMEOUT, Connect};
use keel_sys::ns::NetNs;

/// Connects from inside the network namespace at `netns` (a path such as
/// `/run/netns/keel-lab-demo-control`). The namespace is opened anew for
/// every connection, so one removed meanwhile fails with its name.
pub fn in_netns(netns: &Path) -> Connect {
    let netns: PathBuf = netns.to_path_buf();
    Arc::new(move |addr| {
        let ns = NetNs::open(&netns).map_err(io::Error::other)?;
        ns.run(|| TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT))
            .map_err(io::Error::other)?
    })
}
