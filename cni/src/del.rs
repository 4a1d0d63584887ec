//! DEL: remove the attachment's veth (found by its deterministic host-side
//! name, so the pod's namespace is not needed and may be gone) and release
//! its address. Succeeds when any of them is already gone, and may be
//! repeated.

use keel_sys::netlink::Handle;

use crate::{
    attach,
    error::Error,
    ipam::Ipam,
    types::{CniEnv, NetConf},
};

pub fn del(env: &CniEnv, conf: &NetConf) -> Result<(), Error> {
    let host_name = attach::host_ifname(&env.container_id, &env.ifname);
    let alias = attach::alias(&conf.name, &env.container_id, &env.ifname);
    let ipam = Ipam::for_conf(conf);
    // Deleting a veth blocks for the kernel's RCU grace periods (tens of
    // milliseconds, most of a DEL), so the address is released meanwhile
    // on another thread. Releasing first is safe: the pod's /32 route goes
    // with the link, and an ADD that got the address replaces the route.
    let (link, released) = std::thread::scope(|s| {
        let release = s.spawn(|| ipam.del(env));
        // Deleting one end of a veth deletes the other, and the kernel
        // drops the /32 route, the neighbour and the gateway address with
        // the link.
        let link = Handle::new().map_err(Error::from).and_then(|mut node| {
            attach::delete_host_link(&mut node, &host_name, &alias).map_err(Error::from)
        });
        (link, release.join())
    });
    // A panic in the release thread is a bug; surface it as one.
    released.unwrap_or_else(|p| std::panic::resume_unwind(p))?;
    link?;
    Ok(())
}
