//! Where a pod's status goes: keel-control's `pods/NAME/status`, behind a
//! small trait so a worker can be tested without a server.

use std::{future::Future, pin::Pin};

use keel_api::{Pod, client::Client};

/// Why a status write failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The pod is gone from the server.
    #[error("the pod no longer exists")]
    NotFound,
    #[error(transparent)]
    Client(#[from] keel_api::client::ClientError),
}

pub type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<(), WriteError>> + Send + 'a>>;

/// Writes pod status (only the status: the spec is the user's).
pub trait StatusWriter: Send + Sync + 'static {
    fn write<'a>(&'a self, pod: &'a Pod) -> WriteFuture<'a>;
}

impl StatusWriter for Client {
    fn write<'a>(&'a self, pod: &'a Pod) -> WriteFuture<'a> {
        Box::pin(async move {
            match self.update_status(pod).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Err(WriteError::NotFound),
                Err(e) => Err(e.into()),
            }
        })
    }
}
