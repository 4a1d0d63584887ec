//! keel-cni's network configuration (the plugin's stdin): parsed and
//! validated as the plugin does before any command, the error object it
//! would print built for a refusal, and a `prevResult` read back.
#![no_main]

use keel_cni::types::{CniResult, NetConf, config::peek_version};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = peek_version(data);
    match NetConf::parse(data) {
        Ok(conf) => {
            let _ = conf.store_dir();
            let _ = conf.default_gateway();
            let _ = conf.cni_version.as_str();
        }
        Err(e) => {
            let _ = keel_cni::Error::from(e).to_cni().to_json("1.1.0");
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Some(prev) = v.get("prevResult") {
            if let Ok(r) = CniResult::from_json(prev) {
                let _ = r.to_json(keel_cni::types::CniVersion::LATEST);
            }
        }
    }
});
