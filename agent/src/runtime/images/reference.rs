//! Image references as Kubernetes users write them (`busybox`,
//! `registry:5000/team/app:v1`, `app@sha256:…`), normalised the way Docker
//! does (`docker.io/library/busybox:latest`).

use oci_client::Reference;

use super::ImageError;

/// Parses and normalises an image reference.
pub fn parse(image: &str) -> Result<Reference, ImageError> {
    if image.is_empty() {
        return Err(ImageError::InvalidReference {
            image: image.into(),
            reason: "empty".into(),
        });
    }
    let r = image
        .parse::<Reference>()
        .map_err(|e| ImageError::InvalidReference {
            image: image.into(),
            reason: e.to_string(),
        })?;
    if r.repository().bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ImageError::InvalidReference {
            image: image.into(),
            reason: "repository name must be lowercase".into(),
        });
    }
    Ok(r)
}

/// The normalised name a reference is stored under.
pub fn normalise(image: &str) -> Result<String, ImageError> {
    Ok(parse(image)?.whole())
}

#[cfg(test)]
mod tests;
