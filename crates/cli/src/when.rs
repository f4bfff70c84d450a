//! Durations and instants as people type them on a command line: `120s`, `1h30m`, `500ms`;
//! `2025-03-01T12:00:00Z`, `2025-03-01`, or a duration meaning "that long ago".

use std::time::Duration;

use alpes_contracts::Timestamp;
use chrono::{NaiveDate, Utc};

/// `500ms`, `90s`, `2m`, `1h30m`, `1d`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a duration: use e.g. 500ms, 90s, 2m, 1h30m");
    if text.is_empty() {
        return Err(invalid());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(1),
            "s" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            "d" => Duration::from_secs(86_400),
            _ => return Err(invalid()),
        };
        total += unit * u32::try_from(number).map_err(|_| invalid())?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// An RFC 3339 instant, a date (midnight UTC), or a duration before `now`.
pub fn parse_instant(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    match parse_duration(text) {
        Ok(ago) => Ok(now - chrono::Duration::from_std(ago).map_err(|e| e.to_string())?),
        Err(_) => Err(format!(
            "{text:?} is not an instant: use RFC 3339 (2025-03-01T12:00:00Z), a date \
             (2025-03-01) or a duration ago (90m, 2h, 1d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_combine_units_and_bare_numbers_are_seconds() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("120"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        for bad in ["", "s", "10x", "1.5s", "-3s"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn instants_are_rfc3339_dates_or_durations_ago() {
        let now: Timestamp = "2025-03-01T12:00:00Z".parse().unwrap();
        let at = |text| parse_instant(text, now).map(|t| t.to_rfc3339());
        assert_eq!(
            at("2025-02-28T10:00:00+01:00"),
            Ok("2025-02-28T09:00:00+00:00".into())
        );
        assert_eq!(at("2025-02-01"), Ok("2025-02-01T00:00:00+00:00".into()));
        assert_eq!(at("90m"), Ok("2025-03-01T10:30:00+00:00".into()));
        assert!(at("last tuesday").is_err());
    }
}
