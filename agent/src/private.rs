//! The agent's state is root's alone: its directories are 0700 (made so,
//! or tightened when an older agent left them wider) and its files 0600
//! (written with that mode: `write_atomic` callers pass it). A pod's files
//! keep the modes a container needs *inside* the directories — an image
//! layer's own modes, a rootfs upper dir's 0755, a Memory emptyDir's 0777 —
//! but nobody else on the node gets past the 0700 above them.

use std::{
    fs::{self, DirBuilder, Permissions},
    io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::Path,
};

/// Mode of the agent's directories.
pub const DIR_MODE: u32 = 0o700;
/// Mode of the agent's files.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) 0700, or tightens it to 0700.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))
}

#[cfg(test)]
mod tests;
