//! Shared by the benchmarks: filling a table with delivered messages quickly.

use warbler::domain::message::{Direction, Message, MessageStatus};
use warbler::store::Store;

/// Inserts `total` delivered messages of `account` (one a millisecond, ending now), to 1,000
/// recipients, in transactions of 1,000.
pub async fn fill_messages(
    store: &Store,
    account: &str,
    total: usize,
    body: &str,
) -> anyhow::Result<()> {
    let base = warbler::domain::time::now_micros() - total as i64 * 1_000;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..total {
        let at = base + i as i64 * 1_000;
        batch.push((
            Message {
                sid: format!("SM{:032x}", i),
                account_sid: account.into(),
                messaging_service_sid: None,
                direction: Direction::OutboundApi,
                from: Some("+14155550100".into()),
                to: format!("+1212555{:04}", i % 1000),
                body: body.into(),
                encoding: "GSM-7".into(),
                num_segments: 1,
                num_media: 0,
                status: MessageStatus::Delivered,
                error_code: None,
                error_message: None,
                price: Some("-0.00790".into()),
                price_unit: "USD".into(),
                status_callback: None,
                validity_period: 36000,
                send_at: None,
                date_created: at,
                date_updated: at,
                date_sent: Some(at),
            },
            Vec::new(),
        ));
        if batch.len() == 1000 {
            store.insert_messages(&batch, at).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        store.insert_messages(&batch, base).await?;
    }
    Ok(())
}
