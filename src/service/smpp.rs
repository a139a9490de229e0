//! The SMPP routes' state for the operator (`GET /admin/carriers`). What SMPP carriers send
//! is stored by `engine::smpp`.

use super::App;

/// The state of one SMPP route, for the operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RouteStatus {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub binds: u32,
    pub bound: usize,
    pub submits: u64,
    pub throttled: u64,
    pub timeouts: u64,
    pub rejected: u64,
    /// Submits whose session closed before their response (each sent again: a possible
    /// duplicate).
    pub unanswered_at_close: u64,
    pub sessions_opened: u64,
    pub bind_failures: u64,
}

impl App {
    /// The SMPP routes, their bound sessions and counters since start.
    pub fn carrier_routes(
        &self,
        principal: &super::Principal,
    ) -> crate::error::Result<Vec<RouteStatus>> {
        super::check_credential(principal, super::Operation::ListCarrierRoutes)?;
        use std::sync::atomic::Ordering::Relaxed;
        Ok(self
            .carrier
            .route_configs()
            .iter()
            .filter_map(|config| {
                let route = self.carrier.smpp_route(&config.name)?;
                Some(RouteStatus {
                    name: config.name.clone(),
                    host: config.host.clone(),
                    port: config.port,
                    binds: config.binds,
                    bound: route.bound(),
                    submits: route.stats.submits.load(Relaxed),
                    throttled: route.stats.throttled.load(Relaxed),
                    timeouts: route.stats.timeouts.load(Relaxed),
                    rejected: route.stats.rejected.load(Relaxed),
                    unanswered_at_close: route.stats.unanswered_at_close.load(Relaxed),
                    sessions_opened: route.stats.binds.load(Relaxed),
                    bind_failures: route.stats.bind_failures.load(Relaxed),
                })
            })
            .collect())
    }
}
