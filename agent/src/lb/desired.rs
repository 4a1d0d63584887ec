//! The desired frontends of every Service, kept incrementally: a changed
//! Service or Endpoints recomputes only that Service's frontends and reports
//! which frontends changed, so a sync costs what changed, not the cluster's
//! size (kube-proxy's `{previous, current}` per service).
//!
//! Two Services can claim the same frontend (the same externalIP and port):
//! the one whose `namespace/name` sorts first wins, the other is reported,
//! and takes over if the first goes away.

use std::collections::{BTreeMap, BTreeSet};

use super::model::{Frontend, FrontendSpec, ModelError};

/// The claims on one frontend, sorted by Service key (the first wins).
/// Nearly always one: a vector, not a map, costs a tenth of the memory at
/// ten thousand Services.
#[derive(Debug, Default, Clone)]
struct Claims(Vec<(String, FrontendSpec)>);

impl Claims {
    fn find(&self, service: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(service))
    }

    fn contains_key(&self, service: &str) -> bool {
        self.find(service).is_ok()
    }

    fn insert(&mut self, service: String, spec: FrontendSpec) {
        match self.find(&service) {
            Ok(i) => self.0[i].1 = spec,
            Err(i) => self.0.insert(i, (service, spec)),
        }
    }

    fn remove(&mut self, service: &str) {
        if let Ok(i) = self.find(service) {
            self.0.remove(i);
        }
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The winning claim.
    fn first(&self) -> Option<&FrontendSpec> {
        self.0.first().map(|(_, s)| s)
    }

    fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(k, _)| k)
    }
}

#[derive(Debug, Default, Clone)]
pub struct Desired {
    /// Frontends each Service contributes.
    by_service: BTreeMap<String, Vec<Frontend>>,
    /// Every claim on a frontend, by Service key.
    claims: BTreeMap<Frontend, Claims>,
    /// What could not be programmed, per Service.
    errors: BTreeMap<String, Vec<ModelError>>,
    /// Bumped whenever [`Desired::problems`] may have changed, so callers
    /// list them again only then (listing walks every claim).
    generation: u64,
}

impl Desired {
    /// Replaces what `service` contributes; returns the frontends whose
    /// desired state may have changed.
    pub fn set_service(
        &mut self,
        service: &str,
        frontends: Vec<(Frontend, FrontendSpec)>,
        errors: Vec<ModelError>,
    ) -> BTreeSet<Frontend> {
        let mut touched = self.remove_service(service);
        let mut mine = Vec::with_capacity(frontends.len());
        for (fe, spec) in frontends {
            // Two ports of one Service cannot share a frontend (validation
            // forbids duplicate port/protocol), but a ClusterIP equal to an
            // externalIP could: the first one wins.
            let claims = self.claims.entry(fe).or_default();
            if claims.contains_key(service) {
                continue;
            }
            claims.insert(service.to_string(), spec);
            if claims.len() > 1 {
                self.generation += 1;
            }
            mine.push(fe);
            touched.insert(fe);
        }
        self.by_service.insert(service.to_string(), mine);
        if !errors.is_empty() {
            self.errors.insert(service.to_string(), errors);
            self.generation += 1;
        }
        touched
    }

    /// Forgets `service`; returns the frontends it claimed.
    pub fn remove_service(&mut self, service: &str) -> BTreeSet<Frontend> {
        if self.errors.remove(service).is_some() {
            self.generation += 1;
        }
        let Some(frontends) = self.by_service.remove(service) else {
            return BTreeSet::new();
        };
        for fe in &frontends {
            if let Some(claims) = self.claims.get_mut(fe) {
                if claims.len() > 1 {
                    self.generation += 1;
                }
                claims.remove(service);
                if claims.is_empty() {
                    self.claims.remove(fe);
                }
            }
        }
        frontends.into_iter().collect()
    }

    /// The winning claim on `fe`.
    pub fn get(&self, fe: &Frontend) -> Option<&FrontendSpec> {
        self.claims.get(fe)?.first()
    }

    pub fn frontends(&self) -> impl Iterator<Item = (&Frontend, &FrontendSpec)> {
        self.claims
            .iter()
            .filter_map(|(fe, claims)| Some((fe, claims.first()?)))
    }

    pub fn len(&self) -> usize {
        self.claims.len()
    }

    pub fn is_empty(&self) -> bool {
        self.claims.is_empty()
    }

    /// Changes whenever [`Desired::problems`] may have.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn services(&self) -> impl Iterator<Item = &str> {
        self.by_service.keys().map(String::as_str)
    }

    /// Problems to report: fields the model skipped, and frontends claimed
    /// by more than one Service.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .errors
            .values()
            .flatten()
            .map(|e| e.to_string())
            .collect();
        for (fe, claims) in &self.claims {
            let mut keys = claims.keys();
            if let Some(winner) = keys.next() {
                for loser in keys {
                    out.push(format!(
                        "service {loser}: frontend {fe} is already served by {winner}; ignored"
                    ));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
