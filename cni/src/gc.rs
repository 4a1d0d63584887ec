//! GC (spec 1.1): release every reservation and remove every host-side
//! link of this network whose attachment is not in
//! `cni.dev/valid-attachments`. A link is this network's when its alias
//! says so, or — alias-less, an ADD killed before it set one — when this
//! network's built-in store holds the reservation its name derives from;
//! other networks' links (and, with a delegated IPAM that keeps no such
//! record, every alias-less one) are left alone.

use std::collections::HashSet;

use keel_sys::netlink::{
    Handle,
    link::{LinkDel, LinkList},
};

use crate::{
    attach,
    error::Error,
    ipam::Ipam,
    types::{Attachment, CniEnv, NetConf},
};

pub fn gc(env: &CniEnv, conf: &NetConf) -> Result<(), Error> {
    // Without the list every attachment would look stale: refuse.
    let valid = conf
        .valid_attachments
        .as_ref()
        .ok_or(Error::MissingForCommand {
            field: "cni.dev/valid-attachments",
            command: "GC",
        })?;
    let valid: HashSet<Attachment> = valid.iter().cloned().collect();

    let valid_names: HashSet<String> = valid
        .iter()
        .map(|a| attach::host_ifname(&a.container_id, &a.ifname))
        .collect();

    // The alias-less host links this network owns: named after one of its
    // reservations (ADD reserves before it creates the link).
    let owned: HashSet<String> = Ipam::for_conf(conf)
        .attachments()?
        .iter()
        .map(|a| attach::host_ifname(&a.container_id, &a.ifname))
        .collect();

    let mut node = Handle::new()?;
    for link in LinkList.execute(&mut node)? {
        let stale = match link.alias.as_deref().filter(|a| !a.is_empty()) {
            Some(alias) => {
                attach::parse_alias(alias).is_some_and(|(network, container_id, ifname)| {
                    let attachment = Attachment {
                        container_id: container_id.to_string(),
                        ifname: ifname.to_string(),
                    };
                    network == conf.name && !valid.contains(&attachment)
                })
            }
            // A keel veth whose ADD was killed before it got its alias.
            None => {
                link.kind.as_deref() == Some("veth")
                    && attach::is_host_ifname(&link.name)
                    && owned.contains(&link.name)
                    && !valid_names.contains(&link.name)
            }
        };
        if !stale {
            continue;
        }
        match LinkDel::Index(link.index).execute(&mut node) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ipam::for_conf(conf).gc(env, &valid)?;
    Ok(())
}
