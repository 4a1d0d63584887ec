//! The bearer token: generated at first start, kept in the data directory
//! with mode 0600, read by agents and keelctl (via client.json).

use std::{fs, os::unix::fs::PermissionsExt, path::Path};

use anyhow::Context;
use keel_sys::fs::write_atomic;
use rand::RngCore;

/// Reads the token, or creates one (32 random bytes, hex) atomically.
pub fn load_or_create_token(path: &Path) -> anyhow::Result<String> {
    match fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => {
            let mode = fs::metadata(path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600))
                    .with_context(|| format!("restricting {} to 0600", path.display()))?;
            }
            return Ok(t.trim().to_string());
        }
        Ok(_) => anyhow::bail!(
            "{} is empty; remove it to generate a new token",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, token.as_bytes())?;
    Ok(token)
}

/// Writes a file readable only by its owner, atomically (keel-sys's
/// `write_atomic`: the secret is never readable by others, not even before
/// a chmod).
pub fn write_private(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, data, 0o600)?;
    Ok(())
}
