//! The `schedule` setting: an interval (`"2h"`, `"30m"`, `"1d"`, `"15s"`, `"1h30m"`) or a cron
//! expression (5 fields, Vixie semantics; 6 with seconds; `@daily` and friends), optionally
//! prefixed with a time zone as `CRON_TZ=Europe/Berlin 0 */2 * * *` (without one, cron times are
//! local). Cron matching is `croner`'s, zones are `chrono-tz`'s.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Local, TimeZone, Utc};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("the schedule is empty; use an interval like \"2h\" or a cron expression like \"0 */2 * * *\"")]
    Empty,
    #[error("schedule {input:?}: unknown time zone {zone:?} (use an IANA name like \"Europe/Berlin\")")]
    TimeZone { input: String, zone: String },
    #[error(
        "schedule {input:?}: {why}; use an interval like \"2h\", \"30m\" or \"1d\", or a \
         5-field cron expression like \"0 */2 * * *\""
    )]
    Invalid { input: String, why: String },
}

/// A parsed schedule. Compares and prints as the text it was parsed from.
#[derive(Clone)]
pub enum Schedule {
    /// Run every so often: the next run is this long after the last.
    Every {
        text: String,
        interval: Duration,
    },
    Cron(Box<CronSchedule>),
}

#[derive(Clone)]
pub struct CronSchedule {
    text: String,
    cron: croner::Cron,
    tz: Option<chrono_tz::Tz>,
    /// The longest gap between two runs (see [`Schedule::interval_hint`]).
    longest_gap: Duration,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schedule({:?})", self.as_str())
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}
impl Eq for Schedule {}

impl FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Schedule::parse(s)
    }
}

impl Schedule {
    pub fn parse(input: &str) -> Result<Schedule, ScheduleError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(ScheduleError::Empty);
        }
        let invalid = |why: String| ScheduleError::Invalid { input: text.to_string(), why };
        // An optional `CRON_TZ=Zone ` (or `TZ=Zone `) prefix, as cronie and systemd accept.
        let (tz, rest) = match text.strip_prefix("CRON_TZ=").or_else(|| text.strip_prefix("TZ=")) {
            Some(after) => {
                let (zone, rest) = after
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| invalid("a time zone needs a cron expression after it".into()))?;
                let tz = chrono_tz::Tz::from_str(zone)
                    .map_err(|_| ScheduleError::TimeZone { input: text.to_string(), zone: zone.to_string() })?;
                (Some(tz), rest.trim())
            }
            None => (None, text),
        };
        let fields = rest.split_whitespace().count();
        let looks_cron = rest.starts_with('@') || fields >= 5;
        if !looks_cron {
            if tz.is_some() {
                return Err(invalid("a time zone applies to cron expressions, not intervals".into()));
            }
            let interval = parse_duration(rest).ok_or_else(|| {
                invalid(if fields > 1 {
                    format!("a cron expression needs 5 fields, this has {fields}")
                } else {
                    "not an interval (a number and a unit: s, m, h, d, w)".into()
                })
            })?;
            if interval.is_zero() {
                return Err(invalid("the interval must be longer than zero".into()));
            }
            return Ok(Schedule::Every { text: text.to_string(), interval });
        }
        if fields > 7 {
            return Err(invalid(format!("a cron expression has 5 fields (6 with seconds), this has {fields}")));
        }
        let cron = croner::Cron::from_str(rest).map_err(|e| invalid(e.to_string()))?;
        let mut c = CronSchedule { text: text.to_string(), cron, tz, longest_gap: Duration::ZERO };
        c.longest_gap = c.longest_gap().ok_or_else(|| invalid("it never fires".into()))?;
        Ok(Schedule::Cron(Box::new(c)))
    }

    /// The text it was parsed from.
    pub fn as_str(&self) -> &str {
        match self {
            Schedule::Every { text, .. } => text,
            Schedule::Cron(c) => &c.text,
        }
    }

    /// How long apart runs are, for health checks (healthy while the last success is younger
    /// than 1.5 × this). For an interval, the interval; for cron, the longest gap between two
    /// consecutive runs (so a weekdays-only schedule is not unhealthy on Monday morning).
    pub fn interval_hint(&self) -> Duration {
        match self {
            Schedule::Every { interval, .. } => *interval,
            Schedule::Cron(c) => c.longest_gap,
        }
    }

    /// The first run strictly after `t`. For an interval, `t + interval` (`t` being the last run).
    pub fn next_after(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Every { interval, .. } => {
                t + chrono::Duration::from_std(*interval).unwrap_or(chrono::Duration::MAX)
            }
            Schedule::Cron(c) => c
                .next_after(t)
                .unwrap_or_else(|| t + chrono::Duration::from_std(c.longest_gap).unwrap_or(chrono::Duration::MAX)),
        }
    }

    /// The last cron run at or before `t` (`None` for intervals, which have no fixed times).
    pub fn previous_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Every { .. } => None,
            Schedule::Cron(c) => c.find(t, true, false),
        }
    }

    /// True for cron expressions (fixed times), false for intervals.
    pub fn is_cron(&self) -> bool {
        matches!(self, Schedule::Cron(_))
    }
}

impl CronSchedule {
    fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.find(t, false, true)
    }

    fn find(&self, t: DateTime<Utc>, inclusive: bool, forward: bool) -> Option<DateTime<Utc>> {
        fn go<Z: TimeZone>(c: &croner::Cron, t: DateTime<Z>, inclusive: bool, forward: bool) -> Option<DateTime<Utc>> {
            let r =
                if forward { c.find_next_occurrence(&t, inclusive) } else { c.find_previous_occurrence(&t, inclusive) };
            r.ok().map(|d| d.with_timezone(&Utc))
        }
        match self.tz {
            Some(tz) => go(&self.cron, t.with_timezone(&tz), inclusive, forward),
            None => go(&self.cron, t.with_timezone(&Local), inclusive, forward),
        }
    }

    /// The longest gap between consecutive runs over at least eight days (a week plus a day,
    /// so weekly patterns show) and three runs, from a fixed start so the answer is stable.
    fn longest_gap(&self) -> Option<Duration> {
        const MAX_RUNS: usize = 20_000;
        let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single()?;
        let first = self.next_after(start)?;
        let mut prev = first;
        let mut longest = chrono::Duration::zero();
        for n in 1..MAX_RUNS {
            let Some(next) = self.next_after(prev) else {
                break;
            };
            longest = longest.max(next - prev);
            prev = next;
            if n >= 2 && prev - first >= chrono::Duration::days(8) {
                break;
            }
        }
        if longest.is_zero() {
            return None;
        }
        longest.to_std().ok()
    }
}

/// Parses an interval: one or more `<number><unit>` parts (`2h`, `1h30m`, `1.5d`), units `s`,
/// `m`, `h`, `d`, `w` (also `ms`, and spelled out: `min`, `hours`, `days`...). Case-insensitive.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim().to_ascii_lowercase();
    if s.is_empty() {
        return None;
    }
    let mut total = 0f64;
    let mut rest = s.as_str();
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = rest[num_len..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
            "d" | "day" | "days" => 86_400.0,
            "w" | "week" | "weeks" => 604_800.0,
            _ => return None,
        };
        total += n * secs;
        rest = rest[unit_len..].trim_start();
    }
    if !total.is_finite() || total > 1e12 {
        return None;
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const H: u64 = 3600;

    #[test]
    fn intervals() {
        for (s, secs) in [
            ("2h", 2 * H),
            ("30m", 1800),
            ("1d", 24 * H),
            ("15s", 15),
            ("1w", 7 * 24 * H),
            ("1h30m", 5400),
            (" 2H ", 2 * H),
            ("90 min", 5400),
            ("1.5h", 5400),
            ("2 hours", 2 * H),
        ] {
            let sch = Schedule::parse(s).unwrap();
            assert_eq!(sch.interval_hint(), Duration::from_secs(secs), "{s}");
            assert!(!sch.is_cron());
        }
        let s = Schedule::parse("2h").unwrap();
        assert_eq!(s.next_after(utc("2026-01-01T10:00:00Z")), utc("2026-01-01T12:00:00Z"));
        assert_eq!(s.previous_at_or_before(utc("2026-01-01T10:00:00Z")), None);
        assert_eq!(s.to_string(), "2h");
    }

    #[test]
    fn bad_schedules_explain_themselves() {
        assert_eq!(Schedule::parse("  "), Err(ScheduleError::Empty));
        for s in ["2x", "h", "0h", "every day", "1 2 3", "* * * * * * * *", "61 * * * *", "-5m"] {
            let e = Schedule::parse(s).unwrap_err();
            assert!(matches!(e, ScheduleError::Invalid { .. }), "{s}: {e}");
            assert!(e.to_string().contains(s.trim()), "{s}: {e}");
        }
        assert!(matches!(Schedule::parse("CRON_TZ=Mars/Olympus 0 * * * *"), Err(ScheduleError::TimeZone { .. })));
        assert!(Schedule::parse("CRON_TZ=UTC 2h").is_err());
        assert!(Schedule::parse("CRON_TZ=UTC").is_err());
        // February 30th never comes.
        assert!(Schedule::parse("CRON_TZ=UTC 0 0 30 2 *").is_err());
    }

    #[test]
    fn cron_every_two_hours_in_utc() {
        let s = Schedule::parse("CRON_TZ=UTC 0 */2 * * *").unwrap();
        assert!(s.is_cron());
        assert_eq!(s.interval_hint(), Duration::from_secs(2 * H));
        assert_eq!(s.next_after(utc("2026-03-01T09:15:00Z")), utc("2026-03-01T10:00:00Z"));
        // Strictly after: a run time itself moves on to the next one.
        assert_eq!(s.next_after(utc("2026-03-01T10:00:00Z")), utc("2026-03-01T12:00:00Z"));
        assert_eq!(s.previous_at_or_before(utc("2026-03-01T11:59:00Z")), Some(utc("2026-03-01T10:00:00Z")));
        assert_eq!(s.as_str(), "CRON_TZ=UTC 0 */2 * * *");
    }

    #[test]
    fn cron_time_zone_prefix() {
        // 03:00 in Berlin is 02:00 UTC in winter and 01:00 UTC in summer.
        let s = Schedule::parse("CRON_TZ=Europe/Berlin 0 3 * * *").unwrap();
        assert_eq!(s.next_after(utc("2026-01-10T12:00:00Z")), utc("2026-01-11T02:00:00Z"));
        assert_eq!(s.next_after(utc("2026-07-10T12:00:00Z")), utc("2026-07-11T01:00:00Z"));
        let s = Schedule::parse("TZ=America/New_York 30 8 * * *").unwrap();
        assert_eq!(s.next_after(utc("2026-01-10T00:00:00Z")), utc("2026-01-10T13:30:00Z"));
        assert_eq!(s.interval_hint(), Duration::from_secs(24 * H));
    }

    #[test]
    fn cron_interval_hint_is_the_longest_gap() {
        let weekdays = Schedule::parse("CRON_TZ=UTC 0 9 * * 1-5").unwrap();
        assert_eq!(weekdays.interval_hint(), Duration::from_secs(72 * H));
        let daily = Schedule::parse("CRON_TZ=UTC @daily").unwrap();
        assert_eq!(daily.interval_hint(), Duration::from_secs(24 * H));
        let minutely = Schedule::parse("CRON_TZ=UTC * * * * *").unwrap();
        assert_eq!(minutely.interval_hint(), Duration::from_secs(60));
        let monthly = Schedule::parse("CRON_TZ=UTC 0 3 1 * *").unwrap();
        assert_eq!(monthly.interval_hint(), Duration::from_secs(31 * 24 * H));
        let seconds = Schedule::parse("CRON_TZ=UTC */15 * * * * *").unwrap();
        assert_eq!(seconds.interval_hint(), Duration::from_secs(15));
    }

    #[test]
    fn cron_without_zone_uses_local_time_consistently() {
        // Whatever the local zone, an every-15-minutes pattern lands on quarter hours (all real
        // zones' offsets are multiples of 15 minutes).
        let s = Schedule::parse("*/15 * * * *").unwrap();
        let n = s.next_after(utc("2026-05-05T10:07:00Z"));
        assert_eq!(n, utc("2026-05-05T10:15:00Z"));
        assert_eq!(s.interval_hint(), Duration::from_secs(900));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("3"), None);
        assert_eq!(parse_duration("3 parsecs"), None);
        assert_eq!(parse_duration(""), None);
    }
}
