//! A manifest as keel-control receives it: JSON bytes decoded by kind
//! (`AnyObject::from_json`), then validated, re-encoded and decoded again
//! (what the store does), and its field-selector fields read.
#![no_main]

use keel_api::AnyObject;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(obj) = AnyObject::from_json(data) else {
        return;
    };
    let _ = obj.validate();
    for path in [
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "status.phase",
    ] {
        let _ = obj.field(path);
    }
    // What keel serves back must decode to the same object.
    let again = AnyObject::from_json(&obj.to_json()).expect("keel's own JSON decodes");
    assert_eq!(
        again.to_json_value(),
        obj.to_json_value(),
        "JSON round trip changed the object"
    );
});
