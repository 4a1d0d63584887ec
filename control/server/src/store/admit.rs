//! Kind-specific admission inside the writer: defaults and allocations that
//! must be decided in the same transaction that stores the object.

use keel_api::{
    Deployment, Endpoints, FieldError, Node, Pod, Service, pod::PodPhase, service::ServiceType,
};

use super::state::{State, Stored};
use crate::alloc::{self, Cursors, Ranges};

/// What admission may use and change besides the object.
pub struct Ctx<'a> {
    pub ranges: &'a Ranges,
    pub limits: &'a super::limits::Limits,
    pub cursors: &'a mut Cursors,
}

fn field(field: &str, message: impl std::fmt::Display) -> Vec<FieldError> {
    vec![FieldError {
        field: field.to_string(),
        message: message.to_string(),
    }]
}

pub trait Admit: Stored {
    /// Defaults and allocations for a new object.
    fn admit_create(&mut self, _state: &State, _ctx: &mut Ctx) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
    /// Carries server-assigned values from the stored object and checks
    /// changed ones.
    fn admit_update(
        &mut self,
        _old: &Self,
        _state: &State,
        _ctx: &mut Ctx,
    ) -> Result<(), Vec<FieldError>> {
        Ok(())
    }
    /// Carries the parts of the stored status that other writers own into
    /// a status update that omits them.
    fn admit_status_update(&mut self, _old: &Self) {}
}

/// Node conditions keel-control's controllers own. An agent posts its
/// node's whole status without them; they survive that write, as a kubelet's
/// patch leaves other writers' conditions alone.
const CONTROL_PLANE_CONDITIONS: &[&str] = &[crate::controllers::routes::CONDITION];

impl Admit for Node {
    fn admit_create(&mut self, state: &State, ctx: &mut Ctx) -> Result<(), Vec<FieldError>> {
        let requested = if self.spec.pod_cidr.is_empty() {
            None
        } else {
            Some(
                self.spec
                    .pod_cidr
                    .parse()
                    .map_err(|_| field("spec.podCIDR", "not a CIDR"))?,
            )
        };
        let cidr = alloc::pod_cidr(
            &state.pod_cidrs,
            ctx.ranges,
            &mut ctx.cursors.pod_cidr,
            requested,
            &self.metadata.name,
        )
        .map_err(|e| field("spec.podCIDR", e))?;
        self.spec.pod_cidr = cidr.to_string();
        Ok(())
    }

    fn admit_update(
        &mut self,
        old: &Self,
        _state: &State,
        _ctx: &mut Ctx,
    ) -> Result<(), Vec<FieldError>> {
        if self.spec.pod_cidr.is_empty() {
            self.spec.pod_cidr = old.spec.pod_cidr.clone();
        }
        Ok(())
    }

    fn admit_status_update(&mut self, old: &Self) {
        for c in &old.status.conditions {
            if CONTROL_PLANE_CONDITIONS.contains(&c.type_.as_str())
                && self.condition(&c.type_).is_none()
            {
                self.status.conditions.push(c.clone());
            }
        }
    }
}

impl Admit for Pod {
    fn admit_create(&mut self, _state: &State, _ctx: &mut Ctx) -> Result<(), Vec<FieldError>> {
        // Status is the agent's to write; a new pod starts Pending.
        self.status = Default::default();
        self.status.phase = Some(PodPhase::Pending);
        Ok(())
    }
}

impl Admit for Service {
    fn admit_create(&mut self, state: &State, ctx: &mut Ctx) -> Result<(), Vec<FieldError>> {
        allocate_service(self, None, state, ctx)
    }

    fn admit_update(
        &mut self,
        old: &Self,
        state: &State,
        ctx: &mut Ctx,
    ) -> Result<(), Vec<FieldError>> {
        allocate_service(self, Some(old), state, ctx)
    }
}

/// Assigns the cluster IP and node ports a Service needs, keeping those it
/// already has (an update that omits them keeps them).
fn allocate_service(
    svc: &mut Service,
    old: Option<&Service>,
    state: &State,
    ctx: &mut Ctx,
) -> Result<(), Vec<FieldError>> {
    let owner = format!("service {}/{}", svc.metadata.namespace, svc.metadata.name);
    let owner_key = format!("{}/{}", svc.metadata.namespace, svc.metadata.name);
    let mut errs = Vec::new();
    if !svc.wants_cluster_ip() {
        // Headless or ExternalName: no address of its own (validation
        // refuses an ExternalName with a clusterIP).
        return Ok(());
    }
    if svc.spec.cluster_ip.is_empty()
        && let Some(o) = old
    {
        svc.spec.cluster_ip = o.spec.cluster_ip.clone();
    }
    let requested = if svc.spec.cluster_ip.is_empty() {
        None
    } else {
        Some(
            svc.spec
                .cluster_ip
                .parse()
                .map_err(|_| field("spec.clusterIP", "not an IPv4 address"))?,
        )
    };
    // The service CIDR's first address belongs to default/kubernetes, as
    // in Kubernetes (a Service that held it before keeps it).
    let reserved = crate::kubernetes_service::reserved_ip(ctx.ranges.service_cidr);
    let is_api = owner_key
        == format!(
            "{}/{}",
            crate::kubernetes_service::NAMESPACE,
            crate::kubernetes_service::NAME
        );
    let had_it = old.is_some_and(|o| o.spec.cluster_ip == reserved.to_string());
    if requested == Some(reserved) && !is_api && !had_it {
        return Err(field(
            "spec.clusterIP",
            format!("{reserved} is reserved for the default/kubernetes Service"),
        ));
    }
    let mut allocated = alloc::cluster_ip(
        &state.cluster_ips,
        ctx.ranges,
        &mut ctx.cursors.cluster_ip,
        requested,
        &owner_key,
    );
    if requested.is_none() && !is_api && allocated.as_ref().is_ok_and(|ip| *ip == reserved) {
        allocated = alloc::cluster_ip(
            &state.cluster_ips,
            ctx.ranges,
            &mut ctx.cursors.cluster_ip,
            None,
            &owner_key,
        );
    }
    match allocated {
        Ok(ip) => svc.spec.cluster_ip = ip.to_string(),
        Err(e) => errs.extend(field("spec.clusterIP", e)),
    }
    let mut taken: Vec<u16> = Vec::new();
    if svc.spec.type_ == ServiceType::NodePort {
        for i in 0..svc.spec.ports.len() {
            let (port, protocol) = (svc.spec.ports[i].port, svc.spec.ports[i].protocol);
            if svc.spec.ports[i].node_port.is_none() {
                // Keep the node port this port had before.
                let kept = old
                    .and_then(|o| {
                        o.spec
                            .ports
                            .iter()
                            .find(|p| p.port == port && p.protocol == protocol)
                    })
                    .and_then(|p| p.node_port);
                svc.spec.ports[i].node_port = kept;
            }
            let requested = svc.spec.ports[i].node_port.map(|n| n as u16);
            if let Some(r) = requested
                && taken.contains(&r)
            {
                errs.extend(field(
                    &format!("spec.ports[{i}].nodePort"),
                    format!("{r} is used by another port of {owner}"),
                ));
                continue;
            }
            match alloc::node_port(
                &state.node_ports,
                ctx.ranges,
                &mut ctx.cursors.node_port,
                requested,
                &owner_key,
                &taken,
            ) {
                Ok(p) => {
                    svc.spec.ports[i].node_port = Some(i64::from(p));
                    taken.push(p);
                }
                Err(e) => errs.extend(field(&format!("spec.ports[{i}].nodePort"), e)),
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

impl Admit for Endpoints {}

impl Admit for keel_api::ConfigMap {}

/// An Event's missing timestamps and count are filled on create, as
/// Kubernetes' recorder does, so a hand-written Event lists and sorts like a
/// recorded one.
impl Admit for keel_api::Event {
    fn admit_create(&mut self, _state: &State, _ctx: &mut Ctx) -> Result<(), Vec<FieldError>> {
        let now = keel_api::meta::Time::now();
        let first = *self.first_timestamp.get_or_insert(now);
        self.last_timestamp.get_or_insert(first);
        if self.count == 0 {
            self.count = 1;
        }
        Ok(())
    }
}

/// `stringData` is write-only: merged into `data` before the Secret is
/// stored, on create and on update (Kubernetes' secret strategy).
impl Admit for keel_api::Secret {
    fn admit_create(&mut self, _state: &State, _ctx: &mut Ctx) -> Result<(), Vec<FieldError>> {
        self.normalize();
        Ok(())
    }
    fn admit_update(
        &mut self,
        _old: &Self,
        _state: &State,
        _ctx: &mut Ctx,
    ) -> Result<(), Vec<FieldError>> {
        self.normalize();
        Ok(())
    }
}

impl Admit for Deployment {
    fn admit_create(&mut self, _state: &State, _ctx: &mut Ctx) -> Result<(), Vec<FieldError>> {
        crate::controllers::deployments::history::record(self, None);
        Ok(())
    }
    fn admit_update(
        &mut self,
        old: &Self,
        _state: &State,
        _ctx: &mut Ctx,
    ) -> Result<(), Vec<FieldError>> {
        crate::controllers::deployments::history::record(self, Some(old));
        Ok(())
    }
}
