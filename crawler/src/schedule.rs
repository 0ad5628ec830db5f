//! Cron schedules (UTC) and the loop that runs crawlers when they are due.
//!
//! A crawler is due when a scheduled time has passed since its last run started (or since
//! it was created, before its first run). A process that was down over several scheduled
//! times therefore runs the crawler once when it starts, not once per missed time.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::CrawlerService;

/// Runs may not be closer together than this.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// How often the scheduler looks for due crawlers.
pub const TICK: Duration = Duration::from_secs(20);

/// A parsed five-field cron expression, evaluated in UTC.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
}

impl Schedule {
    /// Parses `minute hour day-of-month month day-of-week` (`@hourly`, `@daily`, ... too)
    /// and checks that runs are at least [`MIN_INTERVAL`] apart.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(text)
            .or_else(|_| Cron::from_str(text).map_err(|e| e.to_string()))
            .map_err(|e| format!("{text:?} is not a five-field cron expression: {e}"))?;
        let schedule = Schedule { cron };
        // Look at a week of runs (or the first 300) for two that are too close.
        let start = DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z")
            .expect("a valid constant")
            .with_timezone(&Utc);
        let times: Vec<DateTime<Utc>> = schedule.cron.iter_after(start).take(300).collect();
        if times.is_empty() {
            return Err(format!("{text:?} never fires"));
        }
        if let Some(pair) = times
            .windows(2)
            .find(|w| (w[1] - w[0]).num_seconds() < MIN_INTERVAL.as_secs() as i64)
        {
            return Err(format!(
                "{text:?} runs {} s apart (at {} and {}); the minimum interval is 5 minutes",
                (pair[1] - pair[0]).num_seconds(),
                pair[0],
                pair[1]
            ));
        }
        Ok(schedule)
    }

    /// The latest scheduled time at or before `now`.
    pub fn previous(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&now, true).ok()
    }

    /// The first scheduled time after `now`.
    pub fn next(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&now, false).ok()
    }

    /// Whether a run is due at `now` for a crawler whose last run started at `since` (or
    /// that was created then).
    pub fn is_due(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.previous(now)
            .is_some_and(|scheduled| scheduled > since)
    }
}

/// Runs scheduled crawlers in the background until the returned task is aborted.
pub fn spawn_scheduler(service: Arc<CrawlerService>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(e) = service.run_due(Utc::now()).await {
                tracing::warn!(error = %e, "crawler scheduler");
            }
            tokio::time::sleep(TICK).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn schedules_closer_than_five_minutes_are_refused() {
        assert!(Schedule::parse("0 */6 * * *").is_ok());
        assert!(Schedule::parse("*/5 * * * *").is_ok());
        assert!(Schedule::parse("@daily").is_ok());
        let err = Schedule::parse("*/2 * * * *").unwrap_err();
        assert!(err.contains("minimum interval"), "{err}");
        let err = Schedule::parse("0,3 * * * *").unwrap_err();
        assert!(err.contains("minimum interval"), "{err}");
        assert!(Schedule::parse("not cron").is_err());
    }

    #[test]
    fn a_missed_run_is_due_once() {
        let schedule = Schedule::parse("0 */6 * * *").unwrap();
        // Last run at 05:00; down until 13:30: the 06:00 and 12:00 runs were missed.
        let last = at("2026-11-01T05:00:00Z");
        let now = at("2026-11-01T13:30:00Z");
        assert!(schedule.is_due(last, now));
        // The catch-up run starts at 13:30; nothing more is due until 18:00.
        assert!(!schedule.is_due(now, at("2026-11-01T17:59:00Z")));
        assert!(schedule.is_due(now, at("2026-11-01T18:00:30Z")));
        assert_eq!(schedule.next(now), Some(at("2026-11-01T18:00:00Z")));
    }
}
