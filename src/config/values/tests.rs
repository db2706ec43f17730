//! Unit tests of `values`.

use super::*;
use chrono::TimeZone;

#[test]
fn durations_parse_and_reject() {
    assert_eq!("5s".parse::<HumanDuration>().unwrap().0, Duration::from_secs(5));
    assert_eq!("2m".parse::<HumanDuration>().unwrap().0, Duration::from_secs(120));
    let err = "5 parsecs".parse::<HumanDuration>().unwrap_err();
    assert!(err.contains("`5 parsecs` is not a duration"), "{err}");
}

#[test]
fn durations_are_bounded() {
    let huge = "300000000 years".parse::<HumanDuration>().unwrap();
    let err = Schedule::every(huge).unwrap_err();
    assert!(err.contains("longer than the limit of 366 days"), "{err}");
    let max_u64 = "18446744073709551615s".parse::<HumanDuration>().unwrap();
    assert!(Schedule::every(max_u64).is_err());
    assert!(Schedule::every("366d".parse().unwrap()).is_ok());
    assert!(check_pg_timeout(Duration::from_millis(i32::MAX as u64)).is_ok());
    let err = check_pg_timeout(Duration::from_secs(25 * 86_400)).unwrap_err();
    assert!(err.contains("PostgreSQL's limit"), "{err}");
    assert!(check_pg_timeout(Duration::ZERO).is_ok());
    assert!(check_pg_timeout(Duration::from_micros(500)).unwrap_err().contains("1 ms"));
    assert!(parse_bounded("2h", MAX_DURATION).is_ok());
    assert!(parse_bounded("300000000 years", MAX_DURATION).unwrap_err().contains("366 days"));
    assert!(parse_bounded("soon", MAX_DURATION).unwrap_err().contains("not a duration"));
}

#[test]
fn timezones_parse_and_reject() {
    let tz: Timezone = "America/New_York".parse().unwrap();
    assert_eq!(tz.sql_literal(), "'America/New_York'");
    let err = "Mars/Olympus".parse::<Timezone>().unwrap_err();
    assert!(err.contains("unknown timezone `Mars/Olympus`"), "{err}");
}

#[test]
fn cron_needs_six_fields() {
    assert!(Schedule::cron("0 */5 * * * *").is_ok());
    let err = Schedule::cron("*/5 * * * *").unwrap_err();
    assert!(err.contains("6 fields"), "{err}");
    assert!(Schedule::cron("not a cron").is_err());
    let err = Schedule::cron("0 0 0 30 2 *").unwrap_err();
    assert!(err.contains("never fires"), "{err}");
}

#[test]
fn cron_next_run_is_in_utc() {
    let schedule = Schedule::cron("0 */5 * * * *").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 10).unwrap();
    let next = schedule.next_after(now, None).unwrap();
    assert_eq!(next, Utc.with_ymd_and_hms(2026, 11, 25, 19, 45, 0).unwrap());
}

#[test]
fn a_missed_run_is_due() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 10).unwrap();
    let cron = Schedule::cron("0 */5 * * * *").unwrap();
    assert!(cron.is_due(now, None));
    assert!(cron.is_due(now, Some(Utc.with_ymd_and_hms(2026, 11, 25, 19, 39, 0).unwrap())));
    assert!(!cron.is_due(now, Some(Utc.with_ymd_and_hms(2026, 11, 25, 19, 40, 1).unwrap())));
    let every = Schedule::every("5m".parse().unwrap()).unwrap();
    assert!(every.is_due(now, Some(now - chrono::Duration::minutes(5))));
    assert!(!every.is_due(now, Some(now - chrono::Duration::minutes(4))));
}

#[test]
fn intervals_of_both_kinds() {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 10).unwrap();
    assert_eq!(Schedule::cron("0 */5 * * * *").unwrap().interval(now), Some(Duration::from_secs(300)));
    assert_eq!(Schedule::cron("0 0 3 * * *").unwrap().interval(now), Some(Duration::from_secs(86_400)));
    assert_eq!(Schedule::every("90s".parse().unwrap()).unwrap().interval(now), Some(Duration::from_secs(90)));
}

#[test]
fn interval_next_run_counts_from_last_start() {
    let schedule = Schedule::every("5m".parse().unwrap()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 0).unwrap();
    let last = Utc.with_ymd_and_hms(2026, 11, 25, 19, 40, 0).unwrap();
    assert_eq!(schedule.next_after(now, Some(last)), Some(Utc.with_ymd_and_hms(2026, 11, 25, 19, 45, 0).unwrap()));
    assert_eq!(schedule.next_after(now, None), Some(now));
    assert!(Schedule::every("500ms".parse().unwrap()).is_err());
}
