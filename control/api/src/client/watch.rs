//! The newline-delimited JSON stream of a watch.

use bytes::{Buf, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::error::ClientError;
use crate::resource::{EventType, Resource, Status, WatchEvent};

/// Events of one watch, read as they arrive. `next` returns `None` when the
/// server ends the stream (the caller resumes from its last resourceVersion).
pub struct WatchStream<R> {
    body: Incoming,
    buf: BytesMut,
    path: String,
    _kind: std::marker::PhantomData<R>,
}

impl<R: Resource> WatchStream<R> {
    pub(crate) fn new(body: Incoming, path: String) -> Self {
        Self {
            body,
            buf: BytesMut::new(),
            path,
            _kind: std::marker::PhantomData,
        }
    }

    /// The next event. An ERROR event from the server is returned as
    /// `Err(ClientError::Api(status))` (410 Expired means relist).
    pub async fn next(&mut self) -> Option<Result<WatchEvent<R>, ClientError>> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = &line[..pos];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return Some(self.decode(line));
            }
            match self.body.frame().await? {
                Ok(frame) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
                Err(e) => {
                    return Some(Err(ClientError::Unreachable {
                        server: self.path.clone(),
                        message: e.to_string(),
                    }));
                }
            }
        }
    }

    fn decode(&self, line: &[u8]) -> Result<WatchEvent<R>, ClientError> {
        let protocol = |message: String| ClientError::Protocol {
            path: self.path.clone(),
            message,
        };
        let raw: WatchEvent<serde_json::Value> =
            serde_json::from_slice(line).map_err(|e| protocol(e.to_string()))?;
        match raw.type_ {
            EventType::Error => {
                let status: Status =
                    serde_json::from_value(raw.object).map_err(|e| protocol(e.to_string()))?;
                Err(ClientError::Api(Box::new(status)))
            }
            EventType::Bookmark => {
                // A bookmark carries only metadata.resourceVersion.
                let mut obj: R = serde_json::from_value(serde_json::json!({}))
                    .map_err(|e| protocol(e.to_string()))?;
                obj.meta_mut().resource_version = raw.object["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                Ok(WatchEvent {
                    type_: EventType::Bookmark,
                    object: obj,
                })
            }
            t => {
                let object: R =
                    serde_json::from_value(raw.object).map_err(|e| protocol(e.to_string()))?;
                Ok(WatchEvent { type_: t, object })
            }
        }
    }
}
