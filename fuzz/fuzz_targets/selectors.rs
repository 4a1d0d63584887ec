//! Label and field selectors as `?labelSelector=` / `?fieldSelector=`
//! carry them: parsed, printed, parsed again, and matched. The first line
//! is the selector, the rest `key=value` labels to match against.
#![no_main]

use std::collections::BTreeMap;

use keel_api::{FieldSelector, Selector};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let selector = lines.next().unwrap_or_default();
    let labels: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if let Ok(s) = Selector::parse(selector) {
        let _ = s.matches(&labels);
        let _ = s.is_everything();
        // What keel prints (in `keelctl describe`, in URLs) parses back to
        // the same selector.
        let printed = s.to_string();
        let again = Selector::parse(&printed)
            .unwrap_or_else(|e| panic!("{selector:?} printed as {printed:?} does not parse: {e}"));
        assert_eq!(again.to_string(), printed, "{selector:?}");
        assert_eq!(again.matches(&labels), s.matches(&labels), "{selector:?}");
    }
    if let Ok(f) = FieldSelector::parse(selector) {
        let _ = f.fields().count();
        let _ = f.matches(|k| labels.get(k).cloned());
    }
});
