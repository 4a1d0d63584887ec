//! Loading an embedded object with its maps pinned, and finding its
//! programs: the steps (and their errors) both datapaths share.

use std::{
    os::fd::{AsFd, BorrowedFd},
    path::Path,
};

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        Program, ProgramError,
        links::{FdLink, LinkError},
    },
};

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("loading the {what} programs (maps pinned under {dir}): {source}")]
    Load {
        what: &'static str,
        dir: String,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("BPF program {name}: {source}")]
    Program {
        name: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("BPF program {name}: {what}")]
    Link { name: &'static str, what: String },
    #[error("the BPF object has no {0}")]
    Missing(&'static str),
}

impl ObjectError {
    /// For `map_err`: a failure of program `name`.
    pub fn program(name: &'static str) -> impl Fn(ProgramError) -> Self + Copy {
        move |source| Self::Program {
            name,
            source: Box::new(source),
        }
    }
}

/// Loads `object` (the `what` programs) with each map in `maps` pinned at
/// `maps_dir/<name>`: reused if a pin is there, created and pinned if not.
pub fn load_pinned(
    object: &[u8],
    what: &'static str,
    maps_dir: &Path,
    maps: &[&str],
) -> Result<Ebpf, ObjectError> {
    let mut loader = EbpfLoader::new();
    let paths: Vec<_> = maps.iter().map(|n| (*n, maps_dir.join(n))).collect();
    for (name, path) in &paths {
        loader.map_pin_path(name, path.as_path());
    }
    loader.load(object).map_err(|source| ObjectError::Load {
        what,
        dir: maps_dir.display().to_string(),
        source: Box::new(source),
    })
}

/// Program `name` of `ebpf` as its kind `T` (e.g. `SchedClassifier`).
pub fn program<'a, T>(ebpf: &'a mut Ebpf, name: &'static str) -> Result<&'a mut T, ObjectError>
where
    &'a mut T: TryFrom<&'a mut Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(ObjectError::Missing(name))?
        .try_into()
        .map_err(ObjectError::program(name))
}

/// A loaded program's descriptor.
pub fn program_fd<'a>(ebpf: &'a Ebpf, name: &'static str) -> Result<BorrowedFd<'a>, ObjectError> {
    let p = ebpf.program(name).ok_or(ObjectError::Missing(name))?;
    Ok(p.fd().map_err(ObjectError::program(name))?.as_fd())
}

/// A just-attached link of program `name` as a descriptor link, to pin.
pub fn fd_link<L>(name: &'static str, link: L) -> Result<FdLink, ObjectError>
where
    L: TryInto<FdLink, Error = LinkError>,
{
    link.try_into().map_err(|e| ObjectError::Link {
        name,
        what: e.to_string(),
    })
}
