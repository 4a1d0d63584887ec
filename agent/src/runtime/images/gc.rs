//! Garbage collection: forget references no container uses, then delete
//! every blob and unpacked layer that no remaining reference reaches (mark
//! and sweep, like containerd's content GC). The marking is pure.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
};

use super::{
    ImageError, ImageStore, digest_hex,
    manifest::{Document, Manifest},
    store::RefEntry,
};

/// What one collection removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Collected {
    pub images: Vec<String>,
    pub blobs: usize,
    pub layers: usize,
}

/// The references to keep: those in use (by normalised name or by manifest
/// digest).
pub fn keep(refs: &BTreeMap<String, RefEntry>, in_use: &BTreeSet<String>) -> BTreeSet<String> {
    refs.iter()
        .filter(|(name, e)| in_use.contains(*name) || in_use.contains(&e.manifest))
        .map(|(n, _)| n.clone())
        .collect()
}

impl ImageStore {
    /// Removes every image not named in `in_use` and everything only it used.
    pub async fn gc(&self, in_use: &BTreeSet<String>) -> Result<Collected, ImageError> {
        let _guard = self.lock().await;
        let mut refs = self.refs();
        let kept = keep(&refs, in_use);
        let mut out = Collected::default();
        refs.retain(|name, _| {
            let k = kept.contains(name);
            if !k {
                out.images.push(name.clone());
            }
            k
        });
        self.write_refs(&refs)?;

        // Mark.
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        for (name, e) in &refs {
            blobs.insert(e.manifest.clone());
            let Some(bytes) = self.read_blob(&e.manifest) else {
                continue;
            };
            let Ok(Document::Manifest(m)) = Document::parse(&e.media_type, &bytes) else {
                continue;
            };
            mark(&m, &mut blobs);
            if let Ok(cfg) = self.config(name, &m) {
                layers.extend(cfg.rootfs.diff_ids);
            }
        }
        // Sweep.
        let keep_hex = |set: &BTreeSet<String>| -> BTreeSet<String> {
            set.iter()
                .filter_map(|d| digest_hex(d).map(str::to_string))
                .collect()
        };
        let (bh, lh) = (keep_hex(&blobs), keep_hex(&layers));
        for (dir, keep, count) in [
            ("blobs/sha256", &bh, &mut out.blobs),
            ("layers", &lh, &mut out.layers),
        ] {
            let path = self.root().join(dir);
            let rd = fs::read_dir(&path).map_err(|e| ImageError::io(&path, e))?;
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if keep.contains(&n) {
                    continue;
                }
                let p = e.path();
                let r = if p.is_dir() {
                    fs::remove_dir_all(&p)
                } else {
                    fs::remove_file(&p)
                };
                r.map_err(|err| ImageError::io(&p, err))?;
                *count += 1;
            }
        }
        Ok(out)
    }
}

fn mark(m: &Manifest, blobs: &mut BTreeSet<String>) {
    blobs.insert(m.config.digest.clone());
    blobs.extend(m.layers.iter().map(|l| l.digest.clone()));
}

#[cfg(test)]
mod tests;
