//! Sends the commands of the departments' schedules (`agora_query::services::schedules`): every
//! few seconds, the lighting schedules whose window started or ended since the last look tell
//! their streets' lamps, and at the nightly decision hour the irrigation schedules that are due
//! open their zones' valves. Commands go out through the alerts' MQTT publisher (agora's own
//! endpoint, or the configured broker); each is logged with the publisher's answer.

use std::sync::Arc;
use std::time::Duration;

use agora_alerts::Publisher;
use agora_api::AppState;
use agora_query::services::schedules::{IrrigationSchedule, LightingPlan, crossed};
use agora_query::services::{irrigation, lighting};
use agora_store::schedules::{Command, Schedule, ScheduleStore};
use tokio::sync::watch;

/// How often schedules are looked at.
const TICK: Duration = Duration::from_secs(5);

/// The sender, until `stop` turns true.
pub fn spawn(
    state: AppState,
    store: Arc<dyn ScheduleStore>,
    publisher: Option<Arc<dyn Publisher>>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut prev = secs(&state);
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
            let now = secs(&state);
            if let Err(e) = tick(&state, store.as_ref(), publisher.as_deref(), prev, now).await {
                tracing::warn!(error = %e, "schedules: a look failed");
            }
            prev = now.max(prev);
        }
    })
}

fn secs(state: &AppState) -> i64 {
    state.clock.now().as_nanos().div_euclid(1_000_000_000)
}

/// Sends what fell due in `(prev, now]`.
pub async fn tick(
    state: &AppState,
    store: &dyn ScheduleStore,
    publisher: Option<&dyn Publisher>,
    prev: i64,
    now: i64,
) -> anyhow::Result<()> {
    let tz = chrono_tz::Europe::Paris;
    let decision = state.config.services.irrigation.decision_hour * 60;
    for s in store.list().await?.into_iter().filter(|s| s.active) {
        match s.service.as_str() {
            "lighting" => {
                let plan: LightingPlan = serde_json::from_value(s.body.clone())?;
                let (start, end) = plan.scenario()?.window();
                for (minute, starting) in [(start, true), (end, false)] {
                    if crossed(prev, now, minute, tz) {
                        let lamps: Vec<String> = lighting::lamps(state.catalog.as_ref())
                            .into_iter()
                            .filter(|l| plan.streets.contains(&(l.site.clone(), l.street.clone())))
                            .map(|l| l.id.to_string())
                            .collect();
                        let payload = plan.command(starting);
                        send(store, publisher, &s, &lamps, &plan.topic, &payload, now).await?;
                    }
                }
            }
            "irrigation" if crossed(prev, now, decision, tz) => {
                let plan: IrrigationSchedule = serde_json::from_value(s.body.clone())?;
                if due(state, &s, &plan, now).await? {
                    send(store, publisher, &s, &plan.valves, &plan.topic, &plan.command(), now)
                        .await?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether an irrigation schedule waters tonight: the zone's advice, or its fixed rhythm.
async fn due(
    state: &AppState,
    s: &Schedule,
    plan: &IrrigationSchedule,
    now: i64,
) -> anyhow::Result<bool> {
    let tz = chrono_tz::Europe::Paris;
    let day =
        |t: i64| chrono::DateTime::from_timestamp(t, 0).map(|x| x.with_timezone(&tz).date_naive());
    if plan.mode == "fixed" {
        let (Some(first), Some(today)) = (day(s.created_at.as_nanos() / 1_000_000_000), day(now))
        else {
            return Ok(false);
        };
        return Ok(plan.fixed_due(first, today));
    }
    let cfg = &state.config.services.irrigation;
    let zones =
        irrigation::analyse(state.catalog.as_ref(), state.store.as_ref(), cfg, tz, now, 1).await?;
    Ok(zones
        .zones
        .iter()
        .find(|z| z.zone == plan.zone && (plan.place.is_none() || z.place == plan.place))
        .and_then(|z| z.irrigate_tonight)
        .unwrap_or(false))
}

async fn send(
    store: &dyn ScheduleStore,
    publisher: Option<&dyn Publisher>,
    s: &Schedule,
    devices: &[String],
    topic: &str,
    payload: &serde_json::Value,
    now: i64,
) -> anyhow::Result<()> {
    for device in devices {
        let topic = topic.replace("{device}", device);
        let outcome = match publisher {
            Some(p) => match p.publish(&topic, payload.to_string().into_bytes(), 1, false).await {
                Ok(said) => format!("delivered: {said}"),
                Err(e) => format!("failed: {e}"),
            },
            None => {
                "failed: no MQTT publisher (agora's endpoint is off and [alerts.mqtt] is not set)"
                    .to_owned()
            }
        };
        store
            .log(&Command {
                schedule_id: s.id,
                device: device.clone(),
                topic,
                payload: payload.clone(),
                at: agora_model::Timestamp::from_nanos(now.saturating_mul(1_000_000_000)),
                outcome,
            })
            .await?;
    }
    Ok(())
}
