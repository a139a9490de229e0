//! `GET /openapi.json`: an OpenAPI 3 document of exactly the operations this server serves:
//! Twilio's, with the paths and operationIds of Twilio's specs (`../shared/twilio-oai`, one file
//! per domain), and warbler's own. [`OPERATIONS`] names for each the route of `routes()` that
//! serves it; `tests/openapi.rs` checks it both ways against the router: every route is
//! described, and every described operation is routed and answers.

use super::ApiState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Map, Value};

/// Where an operation comes from: a Twilio domain (its host and spec file) or warbler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Api,
    Messaging,
    Monitor,
    Iam,
    Content,
    Warbler,
}

impl Source {
    /// The Twilio host and spec file, `None` for warbler's own operations.
    pub const fn twilio(self) -> Option<(&'static str, &'static str)> {
        match self {
            Source::Api => Some(("api.twilio.com", "twilio_api_v2010.json")),
            Source::Messaging => Some(("messaging.twilio.com", "twilio_messaging_v1.json")),
            Source::Monitor => Some(("monitor.twilio.com", "twilio_monitor_v1.json")),
            Source::Iam => Some(("iam.twilio.com", "twilio_iam_v1.json")),
            Source::Content => Some(("content.twilio.com", "twilio_content_v1.json")),
            Source::Warbler => None,
        }
    }

    fn tag(self) -> &'static str {
        self.twilio().map_or("warbler", |(host, _)| host)
    }
}

/// One operation the server answers.
#[derive(Debug, Clone, Copy)]
pub struct DescribedOperation {
    /// The route in `api::routes()` that serves it (paths there have no `.json`).
    pub route: &'static str,
    /// The path as the document (and Twilio's spec) names it.
    pub path: &'static str,
    /// Lowercase, as OpenAPI keys them.
    pub method: &'static str,
    /// Twilio's operationId (warbler's own: named the same way).
    pub operation_id: &'static str,
    pub source: Source,
}

const GET: &str = "get";
const POST: &str = "post";
const DELETE: &str = "delete";

const fn op(
    route: &'static str,
    path: &'static str,
    method: &'static str,
    operation_id: &'static str,
    source: Source,
) -> DescribedOperation {
    DescribedOperation {
        route,
        path,
        method,
        operation_id,
        source,
    }
}

use Source::{Api, Content, Iam, Messaging, Monitor, Warbler};

/// Every operation the router serves.
pub const OPERATIONS: &[DescribedOperation] = &[
    op(
        "/2010-04-01/Accounts",
        "/2010-04-01/Accounts.json",
        GET,
        "ListAccount",
        Api,
    ),
    op(
        "/2010-04-01/Accounts",
        "/2010-04-01/Accounts.json",
        POST,
        "CreateAccount",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}",
        "/2010-04-01/Accounts/{Sid}.json",
        GET,
        "FetchAccount",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}",
        "/2010-04-01/Accounts/{Sid}.json",
        POST,
        "UpdateAccount",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Keys",
        "/2010-04-01/Accounts/{AccountSid}/Keys.json",
        GET,
        "ListKey",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Keys",
        "/2010-04-01/Accounts/{AccountSid}/Keys.json",
        POST,
        "CreateNewKey",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json",
        GET,
        "FetchKey",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json",
        POST,
        "UpdateKey",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Keys/{Sid}.json",
        DELETE,
        "DeleteKey",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers",
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers.json",
        GET,
        "ListAvailablePhoneNumberCountry",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}",
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}.json",
        GET,
        "FetchAvailablePhoneNumberCountry",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/{Type}",
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/Local.json",
        GET,
        "ListAvailablePhoneNumberLocal",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/{Type}",
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/Mobile.json",
        GET,
        "ListAvailablePhoneNumberMobile",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/{Type}",
        "/2010-04-01/Accounts/{AccountSid}/AvailablePhoneNumbers/{CountryCode}/TollFree.json",
        GET,
        "ListAvailablePhoneNumberTollFree",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json",
        GET,
        "ListIncomingPhoneNumber",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json",
        POST,
        "CreateIncomingPhoneNumber",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json",
        GET,
        "FetchIncomingPhoneNumber",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json",
        POST,
        "UpdateIncomingPhoneNumber",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json",
        DELETE,
        "DeleteIncomingPhoneNumber",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/Local.json",
        GET,
        "ListIncomingPhoneNumberLocal",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/Local.json",
        POST,
        "CreateIncomingPhoneNumberLocal",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/Mobile.json",
        GET,
        "ListIncomingPhoneNumberMobile",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/Mobile.json",
        POST,
        "CreateIncomingPhoneNumberMobile",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/TollFree.json",
        GET,
        "ListIncomingPhoneNumberTollFree",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/TollFree.json",
        POST,
        "CreateIncomingPhoneNumberTollFree",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages",
        "/2010-04-01/Accounts/{AccountSid}/Messages.json",
        GET,
        "ListMessage",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages",
        "/2010-04-01/Accounts/{AccountSid}/Messages.json",
        POST,
        "CreateMessage",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json",
        GET,
        "FetchMessage",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json",
        POST,
        "UpdateMessage",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json",
        DELETE,
        "DeleteMessage",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Feedback",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Feedback.json",
        POST,
        "CreateMessageFeedback",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json",
        GET,
        "ListMedia",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json",
        GET,
        "FetchMedia",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json",
        DELETE,
        "DeleteMedia",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records.json",
        GET,
        "ListUsageRecord",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/AllTime.json",
        GET,
        "ListUsageRecordAllTime",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/Daily.json",
        GET,
        "ListUsageRecordDaily",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/LastMonth.json",
        GET,
        "ListUsageRecordLastMonth",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/Monthly.json",
        GET,
        "ListUsageRecordMonthly",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/ThisMonth.json",
        GET,
        "ListUsageRecordThisMonth",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/Today.json",
        GET,
        "ListUsageRecordToday",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/Yearly.json",
        GET,
        "ListUsageRecordYearly",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/{Period}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Records/Yesterday.json",
        GET,
        "ListUsageRecordYesterday",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers.json",
        GET,
        "ListUsageTrigger",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers.json",
        POST,
        "CreateUsageTrigger",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers/{Sid}.json",
        GET,
        "FetchUsageTrigger",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers/{Sid}.json",
        POST,
        "UpdateUsageTrigger",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers/{Sid}",
        "/2010-04-01/Accounts/{AccountSid}/Usage/Triggers/{Sid}.json",
        DELETE,
        "DeleteUsageTrigger",
        Api,
    ),
    op(
        "/2010-04-01/Accounts/{AccountSid}/Balance",
        "/2010-04-01/Accounts/{AccountSid}/Balance.json",
        GET,
        "FetchBalance",
        Api,
    ),
    op(
        "/v1/Services",
        "/v1/Services",
        GET,
        "ListService",
        Messaging,
    ),
    op(
        "/v1/Services",
        "/v1/Services",
        POST,
        "CreateService",
        Messaging,
    ),
    op(
        "/v1/Services/{Sid}",
        "/v1/Services/{Sid}",
        GET,
        "FetchService",
        Messaging,
    ),
    op(
        "/v1/Services/{Sid}",
        "/v1/Services/{Sid}",
        POST,
        "UpdateService",
        Messaging,
    ),
    op(
        "/v1/Services/{Sid}",
        "/v1/Services/{Sid}",
        DELETE,
        "DeleteService",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}",
        "/v1/Services/{ServiceSid}/PhoneNumbers",
        GET,
        "ListPhoneNumber",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}",
        "/v1/Services/{ServiceSid}/PhoneNumbers",
        POST,
        "CreatePhoneNumber",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}/{Sid}",
        "/v1/Services/{ServiceSid}/PhoneNumbers/{Sid}",
        GET,
        "FetchPhoneNumber",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}/{Sid}",
        "/v1/Services/{ServiceSid}/PhoneNumbers/{Sid}",
        DELETE,
        "DeletePhoneNumber",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}",
        "/v1/Services/{ServiceSid}/ShortCodes",
        GET,
        "ListShortCode",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}",
        "/v1/Services/{ServiceSid}/ShortCodes",
        POST,
        "CreateShortCode",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}/{Sid}",
        "/v1/Services/{ServiceSid}/ShortCodes/{Sid}",
        GET,
        "FetchShortCode",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}/{Sid}",
        "/v1/Services/{ServiceSid}/ShortCodes/{Sid}",
        DELETE,
        "DeleteShortCode",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}",
        "/v1/Services/{ServiceSid}/AlphaSenders",
        GET,
        "ListAlphaSender",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}",
        "/v1/Services/{ServiceSid}/AlphaSenders",
        POST,
        "CreateAlphaSender",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}/{Sid}",
        "/v1/Services/{ServiceSid}/AlphaSenders/{Sid}",
        GET,
        "FetchAlphaSender",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/{Pool}/{Sid}",
        "/v1/Services/{ServiceSid}/AlphaSenders/{Sid}",
        DELETE,
        "DeleteAlphaSender",
        Messaging,
    ),
    op("/v1/Alerts", "/v1/Alerts", GET, "ListAlert", Monitor),
    op(
        "/v1/Alerts/{Sid}",
        "/v1/Alerts/{Sid}",
        GET,
        "FetchAlert",
        Monitor,
    ),
    op("/v1/Keys", "/v1/Keys", GET, "ListGetKeys", Iam),
    op("/v1/Keys", "/v1/Keys", POST, "CreateNewKey", Iam),
    op("/v1/Keys/{Sid}", "/v1/Keys/{Sid}", GET, "FetchKey", Iam),
    op("/v1/Keys/{Sid}", "/v1/Keys/{Sid}", POST, "UpdateKey", Iam),
    op("/v1/Keys/{Sid}", "/v1/Keys/{Sid}", DELETE, "DeleteKey", Iam),
    op("/v1/Content", "/v1/Content", GET, "ListContent", Content),
    op("/v1/Content", "/v1/Content", POST, "CreateContent", Content),
    op(
        "/v1/Content/{Sid}",
        "/v1/Content/{Sid}",
        GET,
        "FetchContent",
        Content,
    ),
    op(
        "/v1/Content/{Sid}",
        "/v1/Content/{Sid}",
        DELETE,
        "DeleteContent",
        Content,
    ),
    op("/healthz", "/healthz", GET, "Healthz", Warbler),
    op("/openapi", "/openapi.json", GET, "FetchOpenApi", Warbler),
    op("/metrics", "/metrics", GET, "FetchMetrics", Warbler),
    op(
        "/admin/numbers/import",
        "/admin/numbers/import",
        POST,
        "ImportNumberInventory",
        Warbler,
    ),
    op(
        "/admin/short-codes",
        "/admin/short-codes",
        POST,
        "AssignShortCode",
        Warbler,
    ),
    op(
        "/admin/simulate/inbound",
        "/admin/simulate/inbound",
        POST,
        "SimulateInbound",
        Warbler,
    ),
    op(
        "/admin/billing/credit",
        "/admin/billing/credit",
        POST,
        "CreditBalance",
        Warbler,
    ),
    op(
        "/admin/carriers",
        "/admin/carriers",
        GET,
        "ListCarrierRoutes",
        Warbler,
    ),
    op(
        "/admin/export/messages",
        "/admin/export/messages",
        GET,
        "ExportMessages",
        Warbler,
    ),
    op(
        "/admin/accounts/{AccountSid}/Caps",
        "/admin/accounts/{AccountSid}/Caps",
        GET,
        "FetchAccountCaps",
        Warbler,
    ),
    op(
        "/admin/accounts/{AccountSid}/Caps",
        "/admin/accounts/{AccountSid}/Caps",
        POST,
        "UpdateAccountCaps",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/OptOuts",
        "/warbler/v1/Accounts/{AccountSid}/OptOuts",
        GET,
        "ListOptOut",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/OptOuts",
        "/warbler/v1/Accounts/{AccountSid}/OptOuts",
        POST,
        "ImportOptOut",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/OptOuts/Export",
        "/warbler/v1/Accounts/{AccountSid}/OptOuts/Export",
        GET,
        "ExportOptOut",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/OptOuts/{Recipient}",
        "/warbler/v1/Accounts/{AccountSid}/OptOuts/{Recipient}",
        DELETE,
        "DeleteOptOut",
        Warbler,
    ),
    op(
        "/warbler/v1/Services/{Sid}/OptOutSettings",
        "/warbler/v1/Services/{Sid}/OptOutSettings",
        GET,
        "FetchOptOutSettings",
        Warbler,
    ),
    op(
        "/warbler/v1/Services/{Sid}/OptOutSettings",
        "/warbler/v1/Services/{Sid}/OptOutSettings",
        POST,
        "UpdateOptOutSettings",
        Warbler,
    ),
    op(
        "/warbler/v1/Alarms",
        "/warbler/v1/Alarms",
        GET,
        "ListAlarm",
        Warbler,
    ),
    op(
        "/warbler/v1/Alarms",
        "/warbler/v1/Alarms",
        POST,
        "CreateAlarm",
        Warbler,
    ),
    op(
        "/warbler/v1/Alarms/{Sid}",
        "/warbler/v1/Alarms/{Sid}",
        GET,
        "FetchAlarm",
        Warbler,
    ),
    op(
        "/warbler/v1/Alarms/{Sid}",
        "/warbler/v1/Alarms/{Sid}",
        POST,
        "UpdateAlarm",
        Warbler,
    ),
    op(
        "/warbler/v1/Alarms/{Sid}",
        "/warbler/v1/Alarms/{Sid}",
        DELETE,
        "DeleteAlarm",
        Warbler,
    ),
    op(
        "/warbler/v1/Alarms/{Sid}/Firings",
        "/warbler/v1/Alarms/{Sid}/Firings",
        GET,
        "ListAlarmFiring",
        Warbler,
    ),
    op(
        "/v1/Services/{ServiceSid}/Compliance/Usa2p",
        "/v1/Services/{MessagingServiceSid}/Compliance/Usa2p",
        GET,
        "ListUsAppToPerson",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/Compliance/Usa2p",
        "/v1/Services/{MessagingServiceSid}/Compliance/Usa2p",
        POST,
        "CreateUsAppToPerson",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/Compliance/Usa2p/Usecases",
        "/v1/Services/{MessagingServiceSid}/Compliance/Usa2p/Usecases",
        GET,
        "FetchUsAppToPersonUsecase",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/Compliance/Usa2p/{Sid}",
        "/v1/Services/{MessagingServiceSid}/Compliance/Usa2p/{Sid}",
        GET,
        "FetchUsAppToPerson",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/Compliance/Usa2p/{Sid}",
        "/v1/Services/{MessagingServiceSid}/Compliance/Usa2p/{Sid}",
        POST,
        "UpdateUsAppToPerson",
        Messaging,
    ),
    op(
        "/v1/Services/{ServiceSid}/Compliance/Usa2p/{Sid}",
        "/v1/Services/{MessagingServiceSid}/Compliance/Usa2p/{Sid}",
        DELETE,
        "DeleteUsAppToPerson",
        Messaging,
    ),
    op(
        "/v1/a2p/BrandRegistrations",
        "/v1/a2p/BrandRegistrations",
        GET,
        "ListBrandRegistrations",
        Messaging,
    ),
    op(
        "/v1/a2p/BrandRegistrations",
        "/v1/a2p/BrandRegistrations",
        POST,
        "CreateBrandRegistrations",
        Messaging,
    ),
    op(
        "/v1/a2p/BrandRegistrations/{Sid}",
        "/v1/a2p/BrandRegistrations/{Sid}",
        GET,
        "FetchBrandRegistrations",
        Messaging,
    ),
    op(
        "/v1/a2p/BrandRegistrations/{Sid}",
        "/v1/a2p/BrandRegistrations/{Sid}",
        POST,
        "UpdateBrandRegistrations",
        Messaging,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/A2pEventSink",
        "/warbler/v1/Accounts/{AccountSid}/A2pEventSink",
        GET,
        "FetchA2pEventSink",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/A2pEventSink",
        "/warbler/v1/Accounts/{AccountSid}/A2pEventSink",
        POST,
        "UpdateA2pEventSink",
        Warbler,
    ),
    op(
        "/warbler/v1/A2p/Reviews",
        "/warbler/v1/A2p/Reviews",
        GET,
        "ListA2pRegistrationReviews",
        Warbler,
    ),
    op(
        "/warbler/v1/A2p/Reviews/{Sid}",
        "/warbler/v1/A2p/Reviews/{Sid}",
        POST,
        "ReviewA2pRegistration",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/Sandbox",
        "/warbler/v1/Accounts/{AccountSid}/Sandbox",
        GET,
        "FetchSandbox",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/Sandbox",
        "/warbler/v1/Accounts/{AccountSid}/Sandbox",
        POST,
        "UpdateSandbox",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/TestCredentials",
        "/warbler/v1/Accounts/{AccountSid}/TestCredentials",
        GET,
        "FetchTestCredentials",
        Warbler,
    ),
    op(
        "/warbler/v1/Accounts/{AccountSid}/TestCredentials",
        "/warbler/v1/Accounts/{AccountSid}/TestCredentials",
        POST,
        "UpdateTestCredentials",
        Warbler,
    ),
];

/// The document's operationId: Twilio's, made unique where two domains share one (IAM v1
/// and the 2010 API both have `CreateNewKey`, `FetchKey`…).
fn unique_operation_id(operation: &DescribedOperation) -> String {
    match operation.source {
        Source::Iam => format!("Iam{}", operation.operation_id),
        _ => operation.operation_id.to_string(),
    }
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| {
            let name = segment
                .strip_suffix(".json")
                .unwrap_or(segment)
                .strip_prefix('{')?
                .strip_suffix('}')?;
            Some(json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": {"type": "string"},
            }))
        })
        .collect()
}

/// The OpenAPI 3 document, with `public_url` as its server.
pub fn document(public_url: &str) -> Value {
    let mut paths = Map::new();
    for operation in OPERATIONS {
        let mut described = json!({
            "operationId": unique_operation_id(operation),
            "tags": [operation.source.tag()],
            "responses": {
                "default": {"description": "Twilio's response for this operation; errors are {code, message, more_info, status}"}
            },
        });
        let parameters = path_parameters(operation.path);
        if !parameters.is_empty() {
            described["parameters"] = Value::Array(parameters);
        }
        match operation.source.twilio() {
            Some((host, spec)) => {
                described["x-twilio-host"] = json!(host);
                described["x-twilio-spec"] = json!(spec);
                described["x-twilio-operation-id"] = json!(operation.operation_id);
                described["description"] = json!(format!(
                    "Twilio's {} ({host}); see {spec} in twilio-oai and docs/compatibility.md for what differs",
                    operation.operation_id
                ));
            }
            None => {
                described["description"] =
                    json!("warbler's own; see README.md and docs/compatibility.md");
            }
        }
        if operation.operation_id == "Healthz" || operation.operation_id == "FetchOpenApi" {
            described["security"] = json!([]);
        }
        let item = paths
            .entry(operation.path.to_string())
            .or_insert_with(|| json!({}));
        item[operation.method] = described;
    }
    let tags: Vec<Value> = [Api, Messaging, Monitor, Iam, Content, Warbler]
        .iter()
        .map(|source| json!({"name": source.tag()}))
        .collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "warbler",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The Twilio operations this warbler serves (paths and operationIds as in Twilio's specs; point each SDK domain at this server) and warbler's own.",
        },
        "servers": [{"url": public_url}],
        "security": [{"basic": []}],
        "components": {
            "securitySchemes": {
                "basic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "AccountSid:AuthToken, or ApiKeySid:ApiKeySecret",
                }
            }
        },
        "tags": tags,
        "paths": paths,
    })
}

/// `GET /openapi.json` (no credentials needed: it describes the API, nothing of an account).
pub async fn fetch_open_api(State(state): State<ApiState>) -> Json<Value> {
    Json(document(&state.public_url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_and_every_path_parameter_is_declared() {
        let document = document("http://x");
        let mut ids = std::collections::HashSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "{id} twice");
                let declared: Vec<&str> = operation["parameters"]
                    .as_array()
                    .map(|p| p.iter().map(|p| p["name"].as_str().unwrap()).collect())
                    .unwrap_or_default();
                let in_path = path.matches('{').count();
                assert_eq!(declared.len(), in_path, "{method} {path}");
            }
        }
        assert_eq!(ids.len(), OPERATIONS.len());
    }
}
