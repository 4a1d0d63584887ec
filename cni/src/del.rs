//! DEL: remove the attachment's veth (found by its deterministic host-side
//! name, so the pod's namespace is not needed and may be gone) and release
//! its address. Succeeds when any of them is already gone, and may be
//! repeated.

use crate::{
    attach,
    error::Error,
    ipam::Ipam,
    netlink::Handle,
    types::{CniEnv, NetConf},
};

pub fn del(env: &CniEnv, conf: &NetConf) -> Result<(), Error> {
    let mut node = Handle::new()?;
    let host_name = attach::host_ifname(&env.container_id, &env.ifname);
    let alias = attach::alias(&conf.name, &env.container_id, &env.ifname);
    // Deleting one end of a veth deletes the other, and the kernel drops
    // the /32 route, the neighbour and the gateway address with the link.
    let link = attach::delete_host_link(&mut node, &host_name, &alias);
    // Release the address even if the link could not be removed, then
    // report the link error: the runtime will retry DEL.
    Ipam::for_conf(conf).del(env)?;
    link?;
    Ok(())
}
