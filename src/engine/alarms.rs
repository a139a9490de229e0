//! The alarm evaluator: every `EVALUATION_INTERVAL`, from the webhook sender's loop, counts
//! each alarm's errors over its window and moves it between `ok` and `firing` once per
//! crossing (a conditional update: one node wins), writing the firing and its webhook in
//! `webhook_outbox` in one transaction; then sends the firings' e-mails, each claimed by one
//! node under a lease and retried `EMAIL_ATTEMPTS` times.

use crate::domain::alarm::{format_threshold, Alarm, AlarmFiring, AlarmState, ThresholdType};
use crate::domain::sid::{self, SidKind};
use crate::domain::time::{now_micros, rfc2822};
use crate::error::Result;
use crate::service::alarms::EVALUATION_INTERVAL;
use crate::service::App;

/// How long a node holds a firing's e-mail while sending it (above the SMTP timeout).
const EMAIL_LEASE: i64 = 60_000_000;
/// Attempts at an e-mail before it is marked failed; the wait doubles from `EMAIL_RETRY_BASE`.
const EMAIL_ATTEMPTS: i64 = 5;
const EMAIL_RETRY_BASE: i64 = 30_000_000;

impl App {
    /// Runs `evaluate_alarms` when `EVALUATION_INTERVAL` has passed since the last run.
    pub async fn evaluate_alarms_if_due(&self, now: i64) {
        use std::sync::atomic::Ordering;
        let last = self.alarms_evaluated_at.load(Ordering::Relaxed);
        if now - last < EVALUATION_INTERVAL {
            return;
        }
        self.alarms_evaluated_at.store(now, Ordering::Relaxed);
        if let Err(err) = self.evaluate_alarms(now).await {
            tracing::error!(%err, "alarm evaluation failed");
        }
        // The e-mails go on beside the webhooks, which a slow relay must not hold up.
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(err) = app.send_alarm_emails(now_micros()).await {
                tracing::error!(%err, "sending alarm e-mails failed");
            }
        });
    }

    /// Moves each alarm whose window calls for it to `firing` or back to `ok`, once per
    /// crossing (a conditional update: with several nodes evaluating, one records it).
    /// Returns how many changed state.
    pub async fn evaluate_alarms(&self, now: i64) -> Result<usize> {
        let mut changed = 0;
        let mut after = String::new();
        loop {
            let batch = self.store.alarms_after(&after, 200).await?;
            let Some(last) = batch.last() else { break };
            after = last.sid.clone();
            for alarm in &batch {
                let counts = match self.alarm_window_counts(alarm, now).await {
                    Ok(counts) => counts,
                    Err(err) => {
                        tracing::error!(%err, alarm = %alarm.sid, "alarm not evaluated");
                        continue;
                    }
                };
                let state = alarm.state_for(counts);
                if state == alarm.state {
                    continue;
                }
                let firing = AlarmFiring {
                    sid: sid::generate(SidKind::AlarmFiring),
                    alarm_sid: alarm.sid.clone(),
                    account_sid: alarm.account_sid.clone(),
                    state: match state {
                        AlarmState::Firing => "firing",
                        AlarmState::Ok => "cleared",
                    }
                    .to_string(),
                    counts,
                    value: format_value(alarm.value(counts)),
                    email_status: if alarm.emails.is_empty() {
                        "none"
                    } else {
                        "pending"
                    }
                    .to_string(),
                    email_attempts: 0,
                    email_error: None,
                    date_created: now,
                };
                let payload = alarm_form(alarm, &firing);
                match self
                    .store
                    .change_alarm_state(alarm, state, &firing, &payload, now)
                    .await
                {
                    Ok(true) => {
                        changed += 1;
                        metrics::counter!(crate::telemetry::ALARM_FIRINGS, "state" => firing.state.clone())
                            .increment(1);
                        tracing::warn!(alarm = %alarm.sid, account = %alarm.account_sid, state = %firing.state, value = %firing.value, "alarm");
                    }
                    Ok(false) => {}
                    Err(err) => tracing::error!(%err, alarm = %alarm.sid, "alarm not recorded"),
                }
            }
        }
        if changed > 0 {
            self.webhook_work.notify_one();
        }
        Ok(changed)
    }

    /// Sends the alarm e-mails due at `now`, each claimed by one node; a failure is tried
    /// again later, `EMAIL_ATTEMPTS` times in all. Returns how many were sent.
    pub async fn send_alarm_emails(&self, now: i64) -> Result<usize> {
        let Some(mailer) = self.settings.mailer.clone() else {
            return Ok(0);
        };
        let mut sent = 0;
        for (firing, alarm) in self.store.claim_alarm_emails(now, EMAIL_LEASE, 20).await? {
            let (subject, body) = alarm_mail(&alarm, &firing);
            let attempts = firing.email_attempts + 1;
            match mailer.send(&alarm.emails, &subject, &body).await {
                Ok(()) => {
                    sent += 1;
                    self.store
                        .settle_alarm_email(&firing.sid, "sent", None, None)
                        .await?;
                }
                Err(err) if attempts < EMAIL_ATTEMPTS => {
                    tracing::warn!(%err, firing = %firing.sid, "alarm e-mail failed; retrying");
                    let retry_at = now_micros() + EMAIL_RETRY_BASE * (1 << (attempts - 1));
                    self.store
                        .settle_alarm_email(&firing.sid, "pending", Some(&err), Some(retry_at))
                        .await?;
                }
                Err(err) => {
                    tracing::error!(%err, firing = %firing.sid, "alarm e-mail given up");
                    self.store
                        .settle_alarm_email(&firing.sid, "failed", Some(&err), None)
                        .await?;
                }
            }
        }
        Ok(sent)
    }
}

/// A value as shown: a count, or a percentage to two decimals.
fn format_value(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{}", value as i64)
    } else {
        format!("{value:.2}")
    }
}

fn error_code_text(alarm: &Alarm) -> String {
    alarm
        .error_code
        .map(|c| c.to_string())
        .unwrap_or_else(|| "any".into())
}

/// The webhook's form (signed like every webhook, with the account's auth token).
fn alarm_form(alarm: &Alarm, firing: &AlarmFiring) -> String {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("AccountSid", &alarm.account_sid)
        .append_pair("AlarmSid", &alarm.sid)
        .append_pair("FiringSid", &firing.sid)
        .append_pair("State", &firing.state)
        .append_pair("ErrorCode", &error_code_text(alarm))
        .append_pair("ScopeSid", &alarm.scope_sid)
        .append_pair("ThresholdType", alarm.threshold_type.as_str())
        .append_pair("Threshold", &format_threshold(alarm.threshold))
        .append_pair("WindowMinutes", &alarm.window_minutes.to_string())
        .append_pair("Value", &firing.value)
        .append_pair("Errors", &firing.counts.errors.to_string())
        .append_pair("Messages", &firing.counts.messages.to_string())
        .append_pair("DateFired", &rfc2822(firing.date_created))
        .append_pair("IdempotencyToken", &firing.sid)
        .finish()
}

fn alarm_mail(alarm: &Alarm, firing: &AlarmFiring) -> (String, String) {
    let name = alarm.friendly_name.as_deref().unwrap_or(&alarm.sid);
    let rule = format!(
        "error {} {} {}{} in {} minutes",
        error_code_text(alarm),
        if firing.state == "firing" {
            "reached"
        } else {
            "below"
        },
        format_threshold(alarm.threshold),
        match alarm.threshold_type {
            ThresholdType::Count => "",
            ThresholdType::Percentage => "%",
        },
        alarm.window_minutes
    );
    let subject = format!("[warbler] alarm {name} {}: {rule}", firing.state);
    let body = format!(
        "Alarm: {name} ({})\nAccount: {}\nScope: {}\nState: {}\nRule: {rule}\nValue: {} ({} errors of {} messages)\nAt: {}\n",
        alarm.sid,
        alarm.account_sid,
        alarm.scope_sid,
        firing.state,
        firing.value,
        firing.counts.errors,
        firing.counts.messages,
        rfc2822(firing.date_created),
    );
    (subject, body)
}
