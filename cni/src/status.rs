//! STATUS (spec 1.1): whether an ADD could succeed now. Answers code 50
//! when it could not (no subnet configured yet, the store is unusable, or
//! every address is taken).

use crate::{
    error::Error,
    ipam::Ipam,
    types::{CniEnv, NetConf},
};

pub fn status(env: &CniEnv, conf: &NetConf) -> Result<(), Error> {
    Ipam::for_conf(conf)
        .status(env)
        .map_err(Error::NotAvailable)
}
