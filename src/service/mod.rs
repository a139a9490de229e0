//! The application's use cases at request time: who is calling (authentication), what they
//! may touch (authorization, `Operation::access`), and the operations themselves. Handlers
//! call these; these call the store and apply the domain rules. Knows nothing of HTTP, and
//! nothing of `engine`, whose background loops are methods on the same `App`.

pub mod a2p;
pub mod accounts;
pub mod alarms;
pub mod alerts;
pub mod callback_handoff;
pub mod console;
pub mod content;
pub mod export;
pub mod handoff;
pub mod inbound;
pub mod keys;
pub mod messages;
pub mod messaging;
pub mod metrics;
pub mod numbers;
pub mod smpp;
pub mod test_credentials;
pub mod triggers;
pub mod usage;
pub mod writer;

use crate::domain::account::{Account, AccountStatus};
use crate::domain::credential::{hash_key_secret, secrets_match, ApiKey};
use crate::domain::messaging_service::MessagingService;
use crate::domain::sid::{self, SidKind};
use crate::error::{Error, Result};
use crate::store::Store;

/// Settings the services need (a subset of the configuration).
#[derive(Debug, Clone)]
pub struct Settings {
    pub max_subaccounts: u32,
    pub key_pepper: String,
    /// Outbound prices per destination prefix.
    pub prices: Vec<crate::domain::message::Price>,
    pub price_unit: String,
    /// Segments per second each kind of sender may send.
    pub pacing: crate::domain::message::Pacing,
    /// Per-sender rates (segments per second) that override `pacing`, by sender address.
    pub pacing_overrides: std::collections::HashMap<String, f64>,
    /// Microseconds the simulated carrier waits before its delivery receipt.
    pub simulated_latency: i64,
    /// Microseconds a dispatcher's claim on a message lasts; a crashed node's claims are
    /// taken again after it.
    pub dispatch_lease: i64,
    /// Fault injection for tests: how long the dispatcher holds each claim before
    /// submitting (zero in production).
    pub fault_hold_claims: std::time::Duration,
    /// The same for the webhook sender's claims.
    pub fault_hold_webhook_claims: std::time::Duration,
    /// How webhooks are sent (timeouts, private targets).
    pub webhooks: crate::webhook::WebhookSettings,
    /// Microseconds a status callback keeps being retried after its first attempt.
    pub webhook_retry_window: i64,
    /// Microseconds before the first retry of a failed status callback (doubling after).
    pub webhook_retry_base: i64,
    /// What a STOP blocks: the whole account, or the service pool / number that received it.
    pub opt_out_scope: crate::domain::opt_out::OptOutScope,
    /// Copy a number's opt-outs to the account it is transferred to.
    pub opt_outs_follow_number: bool,
    /// US long codes send to US numbers only with a VERIFIED campaign (else 30034).
    pub a2p_enforcement: bool,
    /// Monthly number rental prices by type.
    pub rental_prices: crate::domain::usage::RentalPrices,
    /// How far below zero a main account's balance may go before sends are refused; `None`
    /// never refuses (no prepaid balance is kept).
    pub credit_limit: Option<crate::domain::usage::Money>,
    /// SMPP routes to carriers (none: everything goes to the simulator).
    pub smpp_routes: Vec<crate::carrier::smpp::route::SmppRouteConfig>,
    /// Microseconds the parts of a concatenated inbound SMPP message wait for the missing
    /// ones; then the parts received are delivered as they are.
    pub smpp_mo_parts_expire: i64,
    /// Incomplete concatenated inbound messages held at most; past it the oldest are
    /// delivered as they are, whatever their age.
    pub smpp_mo_parts_max_sets: i64,
    /// API keys one account may hold (then 400 / 20001).
    pub max_keys_per_account: u32,
    /// Messaging Services one account may hold (then 400 / 20001).
    pub max_services_per_account: u32,
    /// Label message metrics by subaccount rather than by main account.
    pub metrics_per_subaccount: bool,
    /// The SMTP relay alarm e-mails go through (none: alarms cannot notify by e-mail).
    pub mailer: Option<crate::mail::Mailer>,
}

impl Settings {
    /// Settings with warbler's defaults for everything but the two required values.
    pub fn new(max_subaccounts: u32, key_pepper: String) -> Settings {
        Settings {
            max_subaccounts,
            key_pepper,
            prices: crate::domain::message::default_prices(),
            price_unit: "USD".into(),
            pacing: crate::domain::message::Pacing::default(),
            pacing_overrides: std::collections::HashMap::new(),
            simulated_latency: 1_000_000,
            dispatch_lease: 30_000_000,
            fault_hold_claims: std::time::Duration::ZERO,
            fault_hold_webhook_claims: std::time::Duration::ZERO,
            webhooks: crate::webhook::WebhookSettings::default(),
            webhook_retry_window: 24 * 3600 * 1_000_000,
            webhook_retry_base: 5_000_000,
            opt_out_scope: crate::domain::opt_out::OptOutScope::Account,
            opt_outs_follow_number: true,
            a2p_enforcement: false,
            rental_prices: crate::domain::usage::RentalPrices::default(),
            credit_limit: None,
            smpp_routes: Vec::new(),
            smpp_mo_parts_expire: 600 * 1_000_000,
            smpp_mo_parts_max_sets: 10_000,
            max_keys_per_account: 100,
            max_services_per_account: 500,
            metrics_per_subaccount: false,
            mailer: None,
        }
    }
}

/// Rows recently read for the request path (accounts for authentication, Messaging Services
/// for sending), so a request does not pay a database read for them. An entry lives
/// `CACHE_TTL`; this node drops entries at once when it changes them, other nodes
/// (PostgreSQL) see a change within the TTL.
pub struct TtlCache<V> {
    entries: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, V)>>,
    ttl: std::time::Duration,
}

/// How often a node records that it is alive (see `store::nodes`).
pub(crate) const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// How long a node's lease on an SMPP bind slot lasts (renewed every `HEARTBEAT_EVERY`).
pub(crate) const BIND_LEASE: i64 = 10_000_000;

const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);
/// How long a SID that named no account or key is remembered as unknown. SIDs are random
/// (128 bits) and never reused, so a credential created later cannot be one remembered here
/// (the node that creates one forgets it anyway); the cache only spares the database the
/// look-ups of a client repeating an unknown or deleted SID.
const UNKNOWN_SID_TTL: std::time::Duration = std::time::Duration::from_secs(30);
/// Entries kept at most; past it the cache starts over (it only saves reads).
const CACHE_SIZE: usize = 10_000;

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        TtlCache::with_ttl(CACHE_TTL)
    }
}

impl<V> TtlCache<V> {
    fn with_ttl(ttl: std::time::Duration) -> Self {
        TtlCache {
            entries: std::sync::Mutex::default(),
            ttl,
        }
    }
}

impl<V: Clone> TtlCache<V> {
    fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, key: &str, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_SIZE {
                entries.clear();
            }
            entries.insert(key.to_string(), (std::time::Instant::now(), value));
        }
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// See `App::services_changed`.
pub(crate) struct ServicesChanged<'a> {
    services: &'a TtlCache<(MessagingService, i64)>,
    senders: &'a TtlCache<crate::domain::sender::Sender>,
}

impl Drop for ServicesChanged<'_> {
    fn drop(&mut self) {
        self.services.clear();
        self.senders.clear();
    }
}

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct App {
    pub store: Store,
    pub settings: std::sync::Arc<Settings>,
    pub carrier: crate::carrier::Carrier,
    /// Wakes the dispatcher when new work is committed.
    pub work: std::sync::Arc<tokio::sync::Notify>,
    /// Wakes the webhook sender when webhooks are queued.
    pub webhook_work: std::sync::Arc<tokio::sync::Notify>,
    /// Group commit of new messages.
    pub writer: writer::MessageWriter,
    /// New messages the writer claimed for this node's dispatcher as it wrote them.
    pub handoff: std::sync::Arc<handoff::Handoff>,
    /// Status callbacks claimed for this node's webhook sender as they were written.
    pub callback_handoff: std::sync::Arc<callback_handoff::CallbackHandoff>,
    /// Sends webhooks.
    pub webhook_client: crate::webhook::WebhookClient,
    /// Accounts recently read by `authenticate`.
    pub accounts: std::sync::Arc<TtlCache<Account>>,
    /// API keys recently read by `authenticate`; a key deleted on this node is forgotten.
    pub keys: std::sync::Arc<TtlCache<ApiKey>>,
    /// Test credentials recently read by `authenticate`; a token rotated on this node is
    /// forgotten.
    pub test_credentials:
        std::sync::Arc<TtlCache<crate::domain::test_credentials::TestCredentials>>,
    /// Account and key SIDs recently looked up and not found (see `UNKNOWN_SID_TTL`).
    pub unknown_sids: std::sync::Arc<TtlCache<()>>,
    /// Messaging Services (with their pool sizes) recently read by `create_message`, keyed
    /// by service SID; cleared whenever this node changes a service, its pool or a number.
    pub services: std::sync::Arc<TtlCache<(MessagingService, i64)>>,
    /// An account's senders (numbers, alphanumeric IDs) recently read by `create_message`,
    /// keyed by account and address; only found ones, so a number just bought is seen at
    /// once; cleared with `services`.
    pub senders: std::sync::Arc<TtlCache<crate::domain::sender::Sender>>,
    /// When the usage triggers were last evaluated (microseconds).
    pub(crate) triggers_evaluated_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// When the alarms were last evaluated (microseconds).
    pub(crate) alarms_evaluated_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// When incomplete inbound SMPP parts were last looked at (microseconds).
    pub(crate) mo_parts_swept_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
    /// What this node counted since it started.
    pub counters: std::sync::Arc<Counters>,
    /// This node, among the nodes sharing the database.
    pub node: std::sync::Arc<Node>,
    /// The main account of each account seen by the metrics (see `metrics_label_of`).
    pub(crate) main_accounts:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>,
}

/// This node's identity and what it knows of the others (see `App::run_heartbeats`).
#[derive(Debug)]
pub struct Node {
    pub id: String,
    pub started_at: i64,
    /// Nodes that beat their heart lately, this one included (1 until the first beat).
    pub live_nodes: std::sync::atomic::AtomicUsize,
    /// Their ids, sorted (this one alone until the first beat).
    pub(crate) live_ids: std::sync::Mutex<Vec<String>>,
}

impl Node {
    fn new() -> Node {
        let id = format!("node-{}", &sid::random_hex32()[..12]);
        Node {
            live_ids: std::sync::Mutex::new(vec![id.clone()]),
            id,
            started_at: crate::domain::time::now_micros(),
            live_nodes: std::sync::atomic::AtomicUsize::new(1),
        }
    }

    /// This node's share of `binds` bind slots: they are dealt out over the live nodes in id
    /// order, so the shares add up to `binds` (a node may get none when there are more nodes).
    pub fn bind_share(&self, binds: u32) -> u32 {
        let live = self
            .live_ids
            .lock()
            .map(|ids| ids.clone())
            .unwrap_or_default();
        let count = live.len().max(1) as u32;
        let rank = live.iter().position(|id| *id == self.id).unwrap_or(0) as u32;
        binds / count + u32::from(rank < binds % count)
    }

    pub fn live_nodes(&self) -> usize {
        self.live_nodes
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1)
    }
}

/// Events a node counts (logged as they happen; read by tests and, later, metrics).
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages claimed after another claim on them lapsed unfinished: the only ones that can
    /// reach the carrier twice (if their first holder had submitted them before it stopped).
    pub claims_taken_over: std::sync::atomic::AtomicU64,
    /// Webhooks claimed after another claim on them lapsed unfinished.
    pub webhooks_taken_over: std::sync::atomic::AtomicU64,
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    AuthToken,
    ApiKey {
        sid: String,
    },
    /// The account's test credentials (`sid` is the test account SID): only creating
    /// messages and buying numbers, answered as Twilio's magic numbers, nothing stored.
    Test {
        sid: String,
    },
}

/// An authenticated caller: the account it acts as, and the credential used.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Account,
    pub credential: Credential,
}

impl Principal {
    pub fn via_api_key(&self) -> bool {
        matches!(self.credential, Credential::ApiKey { .. })
    }

    /// The test account SID, when the caller used test credentials.
    pub fn test_sid(&self) -> Option<&str> {
        match &self.credential {
            Credential::Test { sid } => Some(sid),
            _ => None,
        }
    }
}

/// The operations warbler serves, named after Twilio's OpenAPI operationIds. `access` is the
/// one place that says which credentials may call each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// <https://www.twilio.com/docs/iam/api/subaccounts#create-a-subaccount>
    CreateAccount,
    ListAccount,
    FetchAccount,
    UpdateAccount,
    /// <https://www.twilio.com/docs/iam/api-keys/key-resource-v2010>
    CreateNewKey,
    ListKey,
    FetchKey,
    UpdateKey,
    DeleteKey,
    /// <https://www.twilio.com/docs/phone-numbers/api/availablephonenumber-resource>
    ListAvailablePhoneNumberCountry,
    FetchAvailablePhoneNumberCountry,
    ListAvailablePhoneNumberLocal,
    /// <https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource>
    CreateIncomingPhoneNumber,
    ListIncomingPhoneNumber,
    FetchIncomingPhoneNumber,
    UpdateIncomingPhoneNumber,
    DeleteIncomingPhoneNumber,
    /// <https://www.twilio.com/docs/messaging/api/service-resource>
    CreateService,
    ListService,
    FetchService,
    UpdateService,
    DeleteService,
    /// Service sender pools: PhoneNumbers, ShortCodes, AlphaSenders.
    CreatePhoneNumber,
    ListPhoneNumber,
    FetchPhoneNumber,
    DeletePhoneNumber,
    CreateShortCode,
    ListShortCode,
    FetchShortCode,
    DeleteShortCode,
    CreateAlphaSender,
    ListAlphaSender,
    FetchAlphaSender,
    DeleteAlphaSender,
    /// <https://www.twilio.com/docs/messaging/api/message-resource>
    CreateMessage,
    ListMessage,
    FetchMessage,
    UpdateMessage,
    DeleteMessage,
    ListMedia,
    FetchMedia,
    DeleteMedia,
    /// <https://www.twilio.com/docs/messaging/api/message-feedback-resource>
    CreateMessageFeedback,
    /// <https://www.twilio.com/docs/usage/api/usage-record>
    ListUsageRecord,
    /// <https://www.twilio.com/docs/usage/api/account#balance>
    FetchBalance,
    /// warbler's own: the operator credits a main account's balance.
    CreditBalance,
    /// warbler's own: the operator exports a message log.
    ExportMessages,
    /// warbler's own: a parent caps a subaccount's rate and monthly volume.
    SetAccountCaps,
    /// warbler's own: the operator reads the state of the carrier routes.
    ListCarrierRoutes,
    /// warbler's own: the operator's Prometheus scrape (`GET /metrics`).
    FetchMetrics,
    /// warbler's own: alarms on an account's delivery errors, and their firings.
    CreateAlarm,
    ListAlarm,
    FetchAlarm,
    UpdateAlarm,
    DeleteAlarm,
    ListAlarmFiring,
    /// <https://www.twilio.com/docs/usage/api/usage-trigger>
    CreateUsageTrigger,
    ListUsageTrigger,
    FetchUsageTrigger,
    UpdateUsageTrigger,
    DeleteUsageTrigger,
    /// <https://www.twilio.com/docs/usage/monitor-alert>
    ListAlert,
    FetchAlert,
    /// <https://www.twilio.com/docs/content/content-api-resources>
    CreateContent,
    ListContent,
    FetchContent,
    DeleteContent,
    /// warbler's own: an account's opt-out list and a service's Advanced Opt-Out.
    ListOptOut,
    ImportOptOut,
    DeleteOptOut,
    FetchOptOutSettings,
    UpdateOptOutSettings,
    /// warbler's own: the operator loads number ranges into the inventory.
    ImportNumberInventory,
    /// warbler's own: the operator gives a short code to an account.
    AssignShortCode,
    /// warbler's own: the simulated carrier delivers an inbound message.
    SimulateInbound,
    /// warbler's own: an account's test credentials (Twilio shows them in its console).
    FetchTestCredentials,
    UpdateTestCredentials,
    /// warbler's own: whether a subaccount is a sandbox (its parent sets it).
    FetchSandbox,
    UpdateSandbox,
    /// <https://www.twilio.com/docs/messaging/api/brand-registration-resource>
    CreateBrandRegistrations,
    ListBrandRegistrations,
    FetchBrandRegistrations,
    UpdateBrandRegistrations,
    /// <https://www.twilio.com/docs/messaging/api/usapptoperson-resource>
    CreateUsAppToPerson,
    ListUsAppToPerson,
    FetchUsAppToPerson,
    UpdateUsAppToPerson,
    DeleteUsAppToPerson,
    FetchUsAppToPersonUsecase,
    /// warbler's own: where an account's A2P registration events go.
    FetchA2pEventSink,
    UpdateA2pEventSink,
    /// warbler's own: the operator reviews A2P registrations (in place of the registry).
    ListA2pRegistrationReviews,
    ReviewA2pRegistration,
}

impl Operation {
    pub const fn access(self) -> Access {
        use Operation::*;
        match self {
            ListAvailablePhoneNumberCountry
            | FetchAvailablePhoneNumberCountry
            | ListAvailablePhoneNumberLocal
            | CreateIncomingPhoneNumber
            | ListIncomingPhoneNumber
            | FetchIncomingPhoneNumber
            | UpdateIncomingPhoneNumber
            | DeleteIncomingPhoneNumber
            | CreateService
            | ListService
            | FetchService
            | UpdateService
            | DeleteService
            | CreatePhoneNumber
            | ListPhoneNumber
            | FetchPhoneNumber
            | DeletePhoneNumber
            | CreateShortCode
            | ListShortCode
            | FetchShortCode
            | DeleteShortCode
            | CreateAlphaSender
            | ListAlphaSender
            | FetchAlphaSender
            | DeleteAlphaSender
            | CreateMessage
            | ListMessage
            | FetchMessage
            | UpdateMessage
            | DeleteMessage
            | ListMedia
            | FetchMedia
            | DeleteMedia
            | CreateMessageFeedback
            | ListUsageRecord
            | FetchBalance
            | CreateUsageTrigger
            | ListUsageTrigger
            | FetchUsageTrigger
            | UpdateUsageTrigger
            | DeleteUsageTrigger
            | ListAlert
            | FetchAlert
            | ListOptOut
            | ImportOptOut
            | DeleteOptOut
            | FetchOptOutSettings
            | UpdateOptOutSettings
            | CreateContent
            | ListContent
            | FetchContent
            | DeleteContent
            | CreateAlarm
            | ListAlarm
            | FetchAlarm
            | UpdateAlarm
            | DeleteAlarm
            | ListAlarmFiring
            | CreateBrandRegistrations
            | ListBrandRegistrations
            | FetchBrandRegistrations
            | UpdateBrandRegistrations
            | CreateUsAppToPerson
            | ListUsAppToPerson
            | FetchUsAppToPerson
            | UpdateUsAppToPerson
            | DeleteUsAppToPerson
            | FetchUsAppToPersonUsecase
            | FetchA2pEventSink
            | UpdateA2pEventSink => Access::Resources,
            CreateAccount
            | ListAccount
            | FetchAccount
            | UpdateAccount
            | CreateNewKey
            | ListKey
            | FetchKey
            | UpdateKey
            | DeleteKey
            | FetchTestCredentials
            | UpdateTestCredentials
            | FetchSandbox
            | UpdateSandbox => Access::ManageCredentials,
            ImportNumberInventory
            | AssignShortCode
            | SimulateInbound
            | CreditBalance
            | ExportMessages
            | SetAccountCaps
            | ListCarrierRoutes
            | FetchMetrics
            | ListA2pRegistrationReviews
            | ReviewA2pRegistration => Access::Operator,
        }
    }
}

/// Where the SMPP sessions run and their receipts are stored. On a SQLite file, a thread of
/// their own (`runtime_on_own_thread`): on the server's runtime the sessions' reads and writes
/// waited behind HTTP requests, and a batch of receipts held a worker for its transaction
/// (SQLite's statements run on the thread that calls them), so `submit_sm_resp`s and
/// requests waited for each other. On PostgreSQL they stay on the server's runtime, as the
/// dispatcher does.
fn smpp_runtime(store: &Store) -> tokio::runtime::Handle {
    if store.backend() == crate::store::Backend::Sqlite {
        match runtime_on_own_thread("smpp") {
            Ok(runtime) => return runtime,
            Err(err) => {
                tracing::warn!(%err, "smpp: no thread of its own; sessions share the server's runtime")
            }
        }
    }
    tokio::runtime::Handle::current()
}

/// What an operation needs from the caller beyond being authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The account's resources: the caller's own account or, with the parent's auth token, a
    /// subaccount's. Standard API keys included.
    Resources,
    /// The Accounts and Keys resources: the account's auth token (or its parent's). Twilio
    /// keeps these away from standard API keys, the only kind its REST API creates.
    ManageCredentials,
    /// Operator administration (warbler's own endpoints): the main account's auth token.
    Operator,
}

impl App {
    pub fn new(store: Store, settings: Settings) -> App {
        // What SMPP carriers send (receipts, inbound messages) is stored by `run_smpp_deliveries`.
        let (deliveries, delivered) = tokio::sync::mpsc::channel(4096);
        let smpp_runtime = (!settings.smpp_routes.is_empty()).then(|| smpp_runtime(&store));
        let carrier = crate::carrier::Carrier::new(
            store.clone(),
            settings.simulated_latency,
            settings.smpp_routes.clone(),
            smpp_runtime.clone().map(|runtime| (deliveries, runtime)),
        );
        let webhook_client = crate::webhook::WebhookClient::new(&settings.webhooks)
            .expect("the HTTP client for webhooks (TLS set-up)");
        let handoff = std::sync::Arc::new(handoff::Handoff::default());
        let app = App {
            webhook_client,
            accounts: std::sync::Arc::default(),
            keys: std::sync::Arc::default(),
            test_credentials: std::sync::Arc::default(),
            unknown_sids: std::sync::Arc::new(TtlCache::with_ttl(UNKNOWN_SID_TTL)),
            services: std::sync::Arc::default(),
            senders: std::sync::Arc::default(),
            triggers_evaluated_at: std::sync::Arc::default(),
            alarms_evaluated_at: std::sync::Arc::default(),
            mo_parts_swept_at: std::sync::Arc::default(),
            counters: std::sync::Arc::default(),
            node: std::sync::Arc::new(Node::new()),
            main_accounts: std::sync::Arc::default(),
            writer: writer::MessageWriter::start(
                store.clone(),
                handoff.clone(),
                settings.dispatch_lease,
            ),
            handoff,
            callback_handoff: std::sync::Arc::default(),
            store,
            settings: std::sync::Arc::new(settings),
            carrier,
            work: std::sync::Arc::new(tokio::sync::Notify::new()),
            webhook_work: std::sync::Arc::new(tokio::sync::Notify::new()),
        };
        if let Some(runtime) = smpp_runtime.filter(|_| app.carrier.has_smpp()) {
            runtime.spawn(app.clone().run_smpp_deliveries(delivered));
            if app.store.backend() == crate::store::Backend::Postgres {
                tokio::spawn(app.clone().run_bind_leases());
            }
        }
        app
    }

    /// Fault injection for the multi-node tests (`Settings::fault_hold_claims` and
    /// `fault_hold_webhook_claims`): logs `what` and holds `claimed` freshly claimed rows
    /// `hold` before working on them.
    pub(crate) async fn fault_hold(
        &self,
        hold: std::time::Duration,
        what: &'static str,
        claimed: usize,
    ) {
        if !hold.is_zero() {
            tracing::warn!(claimed, hold_ms = hold.as_millis() as u64, "{what}");
            tokio::time::sleep(hold).await;
        }
    }

    /// Checks HTTP Basic credentials: `AC…:auth_token` or `SK…:secret`. Every failure,
    /// including an inactive account, is the same 20003 so nothing leaks about which part
    /// was wrong. Accounts and keys come from short-lived caches, and unknown SIDs are
    /// remembered, so that a flood of wrong credentials costs few database reads.
    pub async fn authenticate(&self, username: &str, password: &str) -> Result<Principal> {
        let principal = if sid::is_valid(SidKind::Account, username) {
            let account = self.cached_account(username).await?;
            match account {
                Some(account) if secrets_match(&account.auth_token, password) => Principal {
                    account,
                    credential: Credential::AuthToken,
                },
                Some(_) => return Err(Error::Unauthenticated),
                None => {
                    let test = self
                        .cached_test_credentials(username)
                        .await?
                        .ok_or(Error::Unauthenticated)?;
                    if !secrets_match(&test.test_auth_token, password) {
                        return Err(Error::Unauthenticated);
                    }
                    let account = self
                        .cached_account(&test.account_sid)
                        .await?
                        .ok_or(Error::Unauthenticated)?;
                    Principal {
                        account,
                        credential: Credential::Test {
                            sid: test.test_account_sid,
                        },
                    }
                }
            }
        } else if sid::is_valid(SidKind::ApiKey, username) {
            let key = self
                .cached_key(username)
                .await?
                .ok_or(Error::Unauthenticated)?;
            let presented = hash_key_secret(&self.settings.key_pepper, password);
            if !secrets_match(&key.secret_hash, &presented) {
                return Err(Error::Unauthenticated);
            }
            let account = self
                .cached_account(&key.account_sid)
                .await?
                .ok_or(Error::Unauthenticated)?;
            Principal {
                account,
                credential: Credential::ApiKey { sid: key.sid },
            }
        } else {
            return Err(Error::Unauthenticated);
        };
        self.ensure_active(&principal.account).await?;
        Ok(principal)
    }

    /// An account by SID, from the short-lived caches when fresh there.
    pub(crate) async fn cached_account(&self, sid: &str) -> Result<Option<Account>> {
        if let Some(account) = self.accounts.get(sid) {
            return Ok(Some(account));
        }
        if self.unknown_sids.get(sid).is_some() {
            return Ok(None);
        }
        let account = self.store.account(sid).await?;
        match &account {
            Some(account) => self.accounts.put(&account.sid, account.clone()),
            None => self.unknown_sids.put(sid, ()),
        }
        Ok(account)
    }

    /// Test credentials by their test account SID, from the short-lived caches when fresh
    /// there (random unknown `AC…` names cost no read after the first).
    async fn cached_test_credentials(
        &self,
        test_sid: &str,
    ) -> Result<Option<crate::domain::test_credentials::TestCredentials>> {
        if let Some(test) = self.test_credentials.get(test_sid) {
            return Ok(Some(test));
        }
        let unknown = format!("test:{test_sid}");
        if self.unknown_sids.get(&unknown).is_some() {
            return Ok(None);
        }
        let test = self.store.test_credentials_by_sid(test_sid).await?;
        match &test {
            Some(test) => self.test_credentials.put(test_sid, test.clone()),
            None => self.unknown_sids.put(&unknown, ()),
        }
        Ok(test)
    }

    /// An API key by SID, from the short-lived caches when fresh there.
    async fn cached_key(&self, sid: &str) -> Result<Option<ApiKey>> {
        if let Some(key) = self.keys.get(sid) {
            return Ok(Some(key));
        }
        if self.unknown_sids.get(sid).is_some() {
            return Ok(None);
        }
        let key = self.store.key(sid).await?;
        match &key {
            Some(key) => self.keys.put(&key.sid, key.clone()),
            None => self.unknown_sids.put(sid, ()),
        }
        Ok(key)
    }

    /// A Messaging Service of `account_sid` with its pool size, from the short-lived cache
    /// when fresh there.
    pub(crate) async fn cached_service(
        &self,
        account_sid: &str,
        sid: &str,
    ) -> Result<Option<(MessagingService, i64)>> {
        if let Some(found) = self.services.get(sid) {
            if found.0.account_sid == account_sid {
                return Ok(Some(found));
            }
        }
        let found = self.store.service_with_pool_size(account_sid, sid).await?;
        if let Some(found) = &found {
            self.services.put(sid, found.clone());
        }
        Ok(found)
    }

    /// Clears the service cache when the returned guard drops: a method that changes a
    /// service, a pool or a number holds it, so the cache is cleared after its write.
    pub(crate) fn services_changed(&self) -> ServicesChanged<'_> {
        ServicesChanged {
            services: &self.services,
            senders: &self.senders,
        }
    }

    /// `Store::account_sender`, from the short-lived cache when fresh there.
    pub(crate) async fn cached_sender(
        &self,
        account_sid: &str,
        address: &str,
    ) -> Result<Option<crate::domain::sender::Sender>> {
        let key = format!("{account_sid} {address}");
        if let Some(found) = self.senders.get(&key) {
            return Ok(Some(found));
        }
        let found = self.store.account_sender(account_sid, address).await?;
        if let Some(found) = &found {
            self.senders.put(&key, found.clone());
        }
        Ok(found)
    }

    /// A suspended or closed account's own credentials are refused, and so are a subaccount's
    /// while its parent is not active (suspending the main account suspends its subaccounts).
    pub(crate) async fn ensure_active(&self, account: &Account) -> Result<()> {
        if account.status != AccountStatus::Active {
            return Err(Error::Unauthenticated);
        }
        if let Some(parent) = &account.owner_account_sid {
            let parent = self.cached_account(parent).await?;
            if parent.map(|p| p.status) != Some(AccountStatus::Active) {
                return Err(Error::Unauthenticated);
            }
        }
        Ok(())
    }

    /// Resolves the account named in the request path and checks the caller may act on it:
    /// its own account, or (with the parent's auth token) one of its subaccounts.
    /// `path` is the request path, for the 20404 message.
    pub async fn authorize(
        &self,
        principal: &Principal,
        account_sid: &str,
        operation: Operation,
        path: &str,
    ) -> Result<Account> {
        check_credential(principal, operation)?;
        if account_sid == principal.account.sid {
            return Ok(principal.account.clone());
        }
        if !sid::is_valid(SidKind::Account, account_sid) {
            return Err(Error::not_found(path));
        }
        let target = self
            .cached_account(account_sid)
            .await?
            .ok_or_else(|| Error::not_found(path))?;
        // Twilio: main-account API keys cannot reach subaccount resources.
        if principal.via_api_key() || !principal.account.is_self_or_parent_of(&target) {
            return Err(Error::Unauthenticated);
        }
        Ok(target)
    }
}

/// Refuses API keys on the operations that manage accounts and keys, and test credentials on
/// everything but sending and buying (which answer without touching live resources).
pub fn check_credential(principal: &Principal, operation: Operation) -> Result<()> {
    if principal.test_sid().is_some()
        && !matches!(
            operation,
            Operation::CreateMessage | Operation::CreateIncomingPhoneNumber
        )
    {
        return Err(Error::Unauthenticated);
    }
    match operation.access() {
        Access::Resources => Ok(()),
        Access::ManageCredentials if principal.via_api_key() => Err(Error::Unauthenticated),
        Access::ManageCredentials => Ok(()),
        Access::Operator if principal.via_api_key() || !principal.account.is_main() => {
            Err(Error::forbidden(
                20403,
                "Only the main account's auth token may administer warbler",
            ))
        }
        Access::Operator => Ok(()),
    }
}

/// A single-threaded Tokio runtime on a thread of its own, for the tasks spawned onto it with
/// the handle returned. It lasts as long as the runtime that calls this (the server's, or a
/// test's): when that one shuts down, this one ends too and drops its tasks.
pub(crate) fn runtime_on_own_thread(name: &str) -> std::io::Result<tokio::runtime::Handle> {
    let (handle_tx, handle_rx) = std::sync::mpsc::sync_channel(1);
    let (alive, caller_gone) = tokio::sync::oneshot::channel::<std::convert::Infallible>();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    let _ = handle_tx.send(Ok(runtime.handle().clone()));
                    let _ = runtime.block_on(caller_gone);
                }
                Err(err) => {
                    let _ = handle_tx.send(Err(err));
                }
            }
        })?;
    // A moment's block at start-up: the thread answers as soon as its runtime is built.
    let handle = handle_rx
        .recv()
        .map_err(|_| std::io::Error::other("the runtime's thread ended before starting"))??;
    tokio::spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await
    });
    Ok(handle)
}

/// Runs `task` on a thread of its own with a single-threaded Tokio runtime. The SQLite writer
/// and workers use it: as tasks they would wait behind HTTP work between two statements while
/// holding the single write connection.
pub(crate) fn run_on_own_thread<F, Fut>(name: &str, task: F) -> std::io::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || runtime.block_on(task()))?;
    Ok(())
}
