//! keel-cni's environment (`CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS`, `CNI_PATH`): the input is those six values
//! separated by NUL bytes (what an environment cannot hold), read through
//! the plugin's own `CniEnv::from_vars`; a refusal is turned into the
//! error object the plugin prints.
#![no_main]

use keel_cni::types::{CniArgs, CniEnv};
use libfuzzer_sys::fuzz_target;

const VARS: [&str; 6] = [
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let values: Vec<&str> = text.split('\0').collect();
    let get = |k: &str| {
        let i = VARS.iter().position(|v| *v == k)?;
        values.get(i).map(|v| v.to_string())
    };
    match CniEnv::from_vars(get) {
        Ok(env) => {
            let _ = env.command.as_str();
        }
        Err(e) => {
            let _ = keel_cni::Error::from(e).to_cni().to_json("1.1.0");
        }
    }
    if let Some(args) = values.get(4) {
        let _ = CniArgs::parse(args);
    }
});
