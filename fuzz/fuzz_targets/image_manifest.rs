//! Image manifests and indexes as a registry or an OCI layout serves them:
//! the first byte picks the media type the registry claimed, the rest is
//! the document, parsed by `images::manifest::Document::parse`; an index
//! picks this machine's manifest, a manifest's descriptors name blobs
//! (their digests checked by `digest_hex`) and layer compressions; image
//! references are parsed too.
#![no_main]

use keel_agent::runtime::images::{
    digest_hex,
    manifest::{self, Document},
    reference,
};
use libfuzzer_sys::fuzz_target;

const MEDIA_TYPES: [&str; 6] = [
    "",
    "application/json",
    manifest::OCI_MANIFEST,
    manifest::OCI_INDEX,
    manifest::DOCKER_MANIFEST,
    manifest::DOCKER_LIST,
];

fuzz_target!(|data: &[u8]| {
    let Some((first, doc)) = data.split_first() else {
        return;
    };
    let media_type = MEDIA_TYPES[usize::from(*first) % MEDIA_TYPES.len()];
    match Document::parse(media_type, doc) {
        Ok(Document::Index(index)) => {
            if let Some(d) = index.for_host() {
                let _ = digest_hex(&d.digest);
            }
        }
        Ok(Document::Manifest(m)) => {
            let _ = digest_hex(&m.config.digest);
            for l in &m.layers {
                let _ = digest_hex(&l.digest);
                let _ = manifest::layer_compression(&l.media_type);
            }
        }
        Err(_) => {}
    }
    if let Ok(text) = std::str::from_utf8(doc) {
        if text.len() <= 512 {
            let _ = reference::normalise(text);
        }
    }
});
