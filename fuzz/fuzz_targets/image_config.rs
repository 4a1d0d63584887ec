//! Image configs (the JSON a manifest's `config` names) as the image store
//! reads them: decoded into `ImageConfig`, the run configuration (user,
//! env, entrypoint, cmd, workdir) taken, and every diff ID checked.
#![no_main]

use keel_agent::runtime::images::{ImageConfig, digest_hex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = serde_json::from_slice::<ImageConfig>(data) else {
        return;
    };
    let run = config.run();
    let _ = (run.user, run.env, run.entrypoint, run.cmd, run.working_dir);
    for d in &config.rootfs.diff_ids {
        let _ = digest_hex(d);
    }
});
