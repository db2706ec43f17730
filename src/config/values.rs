//! Typed configuration values that parse themselves from TOML strings:
//! durations (`"5s"`, `"30m"`), IANA timezones and refresh schedules
//! (6-field cron, seconds first, UTC; or a fixed interval).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde::{Deserialize, Deserializer};

/// A duration written the way people write it: `"500ms"`, `"5s"`, `"2m"`, `"1h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

/// The longest duration tally accepts for any setting: anything longer is a
/// typo, and past a few hundred million years the scheduler's clock
/// arithmetic overflows. Rarer runs are written as a cron `schedule`.
pub const MAX_DURATION: Limit = Limit { max: Duration::from_secs(366 * 86_400), text: "366 days" };

/// PostgreSQL's limit for `statement_timeout` and `lock_timeout`
/// (`INT_MAX` milliseconds); a larger value would make every `SET` fail.
pub const MAX_PG_TIMEOUT: Limit =
    Limit { max: Duration::from_millis(i32::MAX as u64), text: "24 days (2147483647 ms, PostgreSQL's limit)" };

/// An upper bound for a duration, with the words that name it in errors.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: Duration,
    pub text: &'static str,
}

impl Limit {
    /// `Ok` when `value` is within the limit; otherwise a reason naming it.
    pub fn check(&self, value: Duration, written: &str) -> Result<Duration, String> {
        if value > self.max {
            return Err(format!("`{written}` is longer than the limit of {}", self.text));
        }
        Ok(value)
    }
}

/// Parses a duration given on the command line and bounds it by `limit`.
pub fn parse_bounded(text: &str, limit: Limit) -> Result<Duration, String> {
    let parsed: HumanDuration = text.parse()?;
    limit.check(parsed.0, text.trim())
}

/// A timeout handed to PostgreSQL as milliseconds: at most its limit, and
/// either 0 (PostgreSQL's "no limit") or at least 1 ms, since a shorter one
/// would round to 0 and silently mean "no limit".
pub fn check_pg_timeout(value: Duration) -> Result<Duration, String> {
    let written = humantime::format_duration(value).to_string();
    MAX_PG_TIMEOUT.check(value, &written)?;
    if !value.is_zero() && value < Duration::from_millis(1) {
        return Err(format!("`{written}` is shorter than PostgreSQL's 1 ms resolution; write \"0s\" for no limit"));
    }
    Ok(value)
}

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(text.trim())
            .map(HumanDuration)
            .map_err(|e| format!("`{text}` is not a duration ({e}); write it like \"5s\", \"2m\" or \"1h\""))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// An IANA timezone name that both chrono-tz and PostgreSQL know, e.g. `America/New_York`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timezone(chrono_tz::Tz);

impl Timezone {
    /// The IANA name, safe to embed in SQL as a string literal: IANA names
    /// contain only letters, digits, `/`, `_`, `-` and `+`.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The name as a quoted SQL literal, e.g. `'America/New_York'`: IANA
    /// names contain no quote (see [`Timezone::name`]), so nothing needs
    /// escaping, and config stays below `db` (no module cycle).
    pub fn sql_literal(&self) -> String {
        format!("'{}'", self.name())
    }

    /// The chrono-tz zone, for computing local days in Rust.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.0
    }
}

impl Default for Timezone {
    fn default() -> Self {
        Timezone(chrono_tz::UTC)
    }
}

impl FromStr for Timezone {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.parse::<chrono_tz::Tz>()
            .map(Timezone)
            .map_err(|_| format!("unknown timezone `{text}`; use an IANA name such as \"UTC\" or \"America/New_York\""))
    }
}

impl<'de> Deserialize<'de> for Timezone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// When a job runs: a cron expression (6 fields, seconds first, evaluated in
/// UTC, parsed exactly as tokio-cron-scheduler parses it) or a fixed interval.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron(Box<Cron>),
    Every(Duration),
}

impl Schedule {
    /// Parses a 6-field cron expression such as `"0 */5 * * * *"`.
    pub fn cron(expression: &str) -> Result<Self, String> {
        let cron = cron_parser().parse(expression).map_err(|e| {
            format!(
                "`{expression}` is not a valid schedule ({e}); write 6 fields, seconds first, in UTC, \
                 e.g. \"0 */5 * * * *\" for every 5 minutes"
            )
        })?;
        // A schedule of a date that never comes (`0 0 0 30 2 *`) parses.
        if cron.find_next_occurrence(&Utc::now(), false).is_err() {
            return Err(format!("`{expression}` never fires (no date matches it); write a schedule that does"));
        }
        Ok(Schedule::Cron(Box::new(cron)))
    }

    /// A fixed interval: at least one second, at most [`MAX_DURATION`].
    pub fn every(interval: HumanDuration) -> Result<Self, String> {
        if interval.0 < Duration::from_secs(1) {
            return Err(format!("`{interval}` is too short; the shortest interval is 1s"));
        }
        MAX_DURATION
            .check(interval.0, &interval.to_string())
            .map_err(|reason| format!("{reason}; write a cron `schedule` for rarer refreshes"))?;
        Ok(Schedule::Every(interval.0))
    }

    /// The next time the job runs after `now`. For an interval, the worker
    /// counts from its last start, so the caller passes that in `last_start`.
    pub fn next_after(&self, now: DateTime<Utc>, last_start: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.find_next_occurrence(&now, false).ok(),
            Schedule::Every(interval) => {
                let interval = chrono::Duration::from_std(*interval).ok()?;
                // checked: a last start read back from history may be anything.
                Some(last_start.and_then(|start| start.checked_add_signed(interval)).map_or(now, |next| next.max(now)))
            }
        }
    }

    /// Whether a run was missed: never succeeded, or a scheduled time (or a
    /// whole interval) has passed since the start of the last success. The
    /// worker refreshes due aggregates at start-up instead of waiting.
    pub fn is_due(&self, now: DateTime<Utc>, last_success_start: Option<DateTime<Utc>>) -> bool {
        let Some(last) = last_success_start else {
            return true;
        };
        match self {
            Schedule::Cron(cron) => cron.find_previous_occurrence(&now, false).is_ok_and(|previous| previous > last),
            Schedule::Every(interval) => {
                chrono::Duration::from_std(*interval).is_ok_and(|interval| now - last >= interval)
            }
        }
    }

    /// The time between two runs (for a cron schedule, between the next two
    /// runs after `now`): what staleness alerts compare against.
    pub fn interval(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            Schedule::Every(interval) => Some(*interval),
            Schedule::Cron(cron) => {
                let first = cron.find_next_occurrence(&now, false).ok()?;
                let second = cron.find_next_occurrence(&first, false).ok()?;
                (second - first).to_std().ok()
            }
        }
    }

    /// How the schedule is written, for logs and `tally status`.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron(cron) => format!("cron {}", cron.pattern),
            Schedule::Every(interval) => format!("every {}", humantime::format_duration(*interval)),
        }
    }
}

/// The parser tokio-cron-scheduler uses, so a schedule that validates here is
/// one the scheduler accepts.
fn cron_parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Required).dom_and_dow(true).build()
}

#[cfg(test)]
mod tests;
