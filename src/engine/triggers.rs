//! The usage-trigger evaluator: every `EVALUATION_INTERVAL`, from the webhook sender's loop,
//! measures each trigger's usage and fires those whose value is reached, at most once per
//! period each. Claims nothing (firing is a conditional update: one node wins); writes the
//! trigger's fired period and its callback in `webhook_outbox`, in one transaction.

use crate::domain::time::rfc2822;
use crate::domain::usage::{day_of, format_measure, parse_money, trigger_period};
use crate::error::Result;
use crate::service::triggers::{usage_record_uri, EVALUATION_INTERVAL};
use crate::service::App;

impl App {
    /// Runs `evaluate_triggers` when `EVALUATION_INTERVAL` has passed since the last run.
    pub async fn evaluate_triggers_if_due(&self, now: i64) {
        use std::sync::atomic::Ordering;
        let last = self.triggers_evaluated_at.load(Ordering::Relaxed);
        if now - last < EVALUATION_INTERVAL {
            return;
        }
        self.triggers_evaluated_at.store(now, Ordering::Relaxed);
        if let Err(err) = self.evaluate_triggers(now).await {
            tracing::error!(%err, "usage trigger evaluation failed");
        }
    }

    /// Fires the triggers whose value is reached, once per period each. Returns how many
    /// fired.
    pub async fn evaluate_triggers(&self, now: i64) -> Result<usize> {
        let today = day_of(now);
        let mut fired = 0;
        let mut after = String::new();
        loop {
            let batch = self.store.triggers_after(&after, 200).await?;
            let Some(last) = batch.last() else { break };
            after = last.sid.clone();
            for t in &batch {
                let (period, _) = trigger_period(t.recurring.as_deref(), today);
                if t.fired_period.as_deref() == Some(period.as_str()) {
                    continue;
                }
                // Stored values and measures share one unit (hundred-thousandths).
                let Some(threshold) = parse_money(&t.trigger_value) else {
                    continue;
                };
                let current = match self.trigger_current_value(t, now).await {
                    Ok(value) => value,
                    Err(err) => {
                        tracing::error!(%err, trigger = %t.sid, "usage trigger not evaluated");
                        continue;
                    }
                };
                if current < threshold {
                    continue;
                }
                let payload = form_urlencoded::Serializer::new(String::new())
                    .append_pair("AccountSid", &t.account_sid)
                    .append_pair("UsageTriggerSid", &t.sid)
                    .append_pair("DateFired", &rfc2822(now))
                    .append_pair("Recurring", t.recurring.as_deref().unwrap_or(""))
                    .append_pair("UsageCategory", &t.usage_category)
                    .append_pair("TriggerBy", &t.trigger_by)
                    .append_pair("TriggerValue", &t.trigger_value)
                    .append_pair(
                        "CurrentValue",
                        &format_measure(&t.usage_category, &t.trigger_by, current),
                    )
                    .append_pair("UsageRecordUri", &usage_record_uri(t))
                    .append_pair("IdempotencyToken", &format!("{}-{period}", t.sid))
                    .finish();
                match self.store.fire_trigger(t, &period, &payload, now).await {
                    Ok(true) => fired += 1,
                    Ok(false) => {}
                    Err(err) => tracing::error!(%err, trigger = %t.sid, "usage trigger not fired"),
                }
            }
        }
        if fired > 0 {
            self.webhook_work.notify_one();
        }
        Ok(fired)
    }
}
