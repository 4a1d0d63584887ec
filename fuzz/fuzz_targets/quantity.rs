//! Resource quantities (`500m`, `1.5Gi`, `2e3`) as pods' requests and
//! limits carry them: parsed, then read as milli-units and whole units.
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
        // A quantity that parsed once parses again from its own text.
        let again = Quantity::parse(q.as_str()).expect("a parsed quantity's text parses");
        assert_eq!(again.milli(), q.milli());
    }
});
