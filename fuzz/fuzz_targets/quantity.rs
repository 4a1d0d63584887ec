//! Resource quantities (`500m`, `1.5Gi`, `2e3`) as pods' requests and
//! limits carry them: parsed, read as milli-units and whole units, and written back.
#![no_main]

use keel_api::Quantity;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(q) = Quantity::parse(text) {
        let _ = q.milli();
        let _ = q.value();
        let _ = q.as_str();
        // What keel writes back (`from_milli`) parses to the same value.
        let written = Quantity::from_milli(q.milli());
        let again = Quantity::parse(written.as_str()).expect("keel's own quantity text parses");
        assert_eq!(
            again.milli(),
            q.milli(),
            "{:?} written as {:?}",
            q.as_str(),
            written.as_str()
        );
    }
});
