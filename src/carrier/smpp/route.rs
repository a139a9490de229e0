//! SMPP routes as the operator configures them (`[[smpp_routes]]` in the TOML file), and the
//! pure choice of a route for a message.

use super::receipt::IdFormat;
use super::text::DefaultCoding;
use serde::{Deserialize, Serialize};

/// How a route binds: one transceiver session, or a transmitter plus a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BindMode {
    #[default]
    Transceiver,
    TransmitterReceiver,
}

/// How a body longer than one segment is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LongMessage {
    /// One `submit_sm` per part, each with an 8-bit concatenation User Data Header.
    #[default]
    Udh,
    /// One `submit_sm` per part, with the `sar_*` TLVs.
    Sar,
    /// The whole body in one `submit_sm`, in the `message_payload` TLV.
    Payload,
}

/// One named SMPP connection to a carrier or aggregator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmppRouteConfig {
    /// The route's name, recorded on messages and matched against the inventory's `route`.
    pub name: String,
    pub host: String,
    pub port: u16,
    /// TLS to the SMSC (server certificate checked against the system's roots).
    pub tls: bool,
    pub system_id: String,
    pub password: String,
    pub system_type: String,
    pub bind_mode: BindMode,
    /// Sessions opened in parallel (each a transceiver, or a transmitter + receiver pair).
    pub binds: u32,
    /// Submits awaiting their response on one session.
    pub window: u32,
    /// Submits per second on one session (0: no limit).
    pub max_submits_per_sec: u32,
    pub source_ton: u8,
    pub source_npi: u8,
    pub dest_ton: u8,
    pub dest_npi: u8,
    /// Data coding of bodies that fit the GSM alphabet (others always go as UCS-2).
    pub data_coding: DefaultCoding,
    pub long_message: LongMessage,
    pub dlr_id_format: IdFormat,
    /// Inventory `route` values whose numbers send through this route (default: its name).
    pub number_routes: Vec<String>,
    /// Destination prefixes (`+44`, `+1415`) that use this route when the sender's number
    /// names no route of its own; the longest match wins.
    pub destination_prefixes: Vec<String>,
    /// Seconds between `enquire_link`s on an idle session.
    pub enquire_link_secs: u64,
    /// Milliseconds to wait for any response before the request counts as lost.
    pub response_timeout_ms: u64,
    /// How long the route pauses after `ESME_RTHROTTLED` / `ESME_RMSGQFUL`.
    pub throttle_pause_ms: u64,
}

impl Default for SmppRouteConfig {
    fn default() -> Self {
        SmppRouteConfig {
            name: String::new(),
            host: "127.0.0.1".to_string(),
            port: 2775,
            tls: false,
            system_id: String::new(),
            password: String::new(),
            system_type: String::new(),
            bind_mode: BindMode::Transceiver,
            binds: 1,
            window: 64,
            max_submits_per_sec: 0,
            source_ton: 1,
            source_npi: 1,
            dest_ton: 1,
            dest_npi: 1,
            data_coding: DefaultCoding::Gsm7,
            long_message: LongMessage::Udh,
            dlr_id_format: IdFormat::Same,
            number_routes: Vec::new(),
            destination_prefixes: Vec::new(),
            enquire_link_secs: 30,
            response_timeout_ms: 10_000,
            throttle_pause_ms: 1_000,
        }
    }
}

impl SmppRouteConfig {
    /// Checks what serde cannot: the values the SMPP fields can hold.
    pub fn validate(&self) -> Result<(), String> {
        let fail = |what: &str| Err(format!("smpp route `{}`: {what}", self.name));
        if self.name.is_empty() || self.name == "simulated" {
            return fail("needs a name other than `simulated`");
        }
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return fail("system_id must have 1 to 15 characters");
        }
        if self.password.len() > 8 {
            return fail("password must have at most 8 characters");
        }
        if self.system_type.len() > 12 {
            return fail("system_type must have at most 12 characters");
        }
        if self.binds == 0 || self.window == 0 {
            return fail("binds and window must be at least 1");
        }
        if !self.system_id.is_ascii() || !self.password.is_ascii() || !self.system_type.is_ascii() {
            return fail("system_id, password and system_type must be ASCII");
        }
        Ok(())
    }

    /// Whether numbers of this inventory route send through this SMPP route.
    pub fn serves_number_route(&self, inventory_route: &str) -> bool {
        if self.number_routes.is_empty() {
            inventory_route == self.name
        } else {
            self.number_routes.iter().any(|r| r == inventory_route)
        }
    }
}

/// The name of the built-in simulator's route.
pub const SIMULATED: &str = "simulated";

/// Picks the route for a message: the SMPP route serving the sender's inventory route, else
/// the SMPP route with the longest destination prefix matching `to`, else the simulator.
pub fn choose_route<'a>(
    routes: &'a [SmppRouteConfig],
    sender_route: Option<&str>,
    to: &str,
) -> &'a str {
    if let Some(inventory) = sender_route {
        if let Some(route) = routes.iter().find(|r| r.serves_number_route(inventory)) {
            return &route.name;
        }
    }
    routes
        .iter()
        .flat_map(|r| {
            r.destination_prefixes
                .iter()
                .filter(|p| to.starts_with(p.as_str()))
                .map(move |p| (p.len(), r.name.as_str()))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, name)| name)
        .unwrap_or(SIMULATED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, numbers: &[&str], prefixes: &[&str]) -> SmppRouteConfig {
        SmppRouteConfig {
            name: name.into(),
            system_id: "esme".into(),
            number_routes: numbers.iter().map(|s| s.to_string()).collect(),
            destination_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            ..SmppRouteConfig::default()
        }
    }

    #[test]
    fn sender_route_then_longest_prefix_then_simulator() {
        let routes = [
            route("uk", &[], &["+44"]),
            route("us", &["us-pool"], &["+1"]),
            route("sf", &[], &["+1415"]),
        ];
        assert_eq!(
            choose_route(&routes, Some("us-pool"), "+447700900000"),
            "us"
        );
        assert_eq!(choose_route(&routes, Some("uk"), "+14155550100"), "uk");
        assert_eq!(
            choose_route(&routes, Some("simulated"), "+14155550100"),
            "sf"
        );
        assert_eq!(choose_route(&routes, None, "+12125550100"), "us");
        assert_eq!(choose_route(&routes, None, "+33612345678"), SIMULATED);
        assert_eq!(choose_route(&[], Some("x"), "+1"), SIMULATED);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(route("a", &[], &[]).validate().is_ok());
        let mut bad = route("a", &[], &[]);
        bad.password = "much-too-long".into();
        assert!(bad.validate().unwrap_err().contains("password"));
        assert!(route("simulated", &[], &[]).validate().is_err());
    }
}
