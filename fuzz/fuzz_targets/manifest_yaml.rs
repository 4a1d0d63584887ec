//! Manifests as `keelctl apply -f` reads them: a YAML stream of documents,
//! each turned into JSON and decoded by kind, then validated.
#![no_main]

use keel_api::AnyObject;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Bounded like any apply: a handful of documents is plenty to explore.
    for doc in serde_yaml_ng::Deserializer::from_str(text).take(8) {
        let Ok(value) = serde_json::Value::deserialize(doc) else {
            return;
        };
        if let Ok(obj) = AnyObject::from_value(value) {
            let _ = obj.validate();
        }
    }
});
