//! How the CLI writes money, instants and durations for people. Machines get `--json`.

use alpes_contracts::{Money, Timestamp};

/// `12000 EUR` as `120.00 EUR`: the currency's minor unit decides the decimals (ISO 4217).
pub fn money(money: &Money) -> String {
    let decimals = minor_unit_digits(&money.currency);
    if decimals == 0 {
        return format!("{} {}", money.amount_minor, money.currency);
    }
    let scale = 10i64.pow(decimals);
    let sign = if money.amount_minor < 0 { "-" } else { "" };
    let abs = money.amount_minor.unsigned_abs();
    let scale = scale as u64;
    format!(
        "{sign}{}.{:0width$} {}",
        abs / scale,
        abs % scale,
        money.currency,
        width = decimals as usize
    )
}

/// Digits after the decimal point of a currency; 2 unless ISO 4217 says otherwise.
fn minor_unit_digits(currency: &str) -> u32 {
    match currency {
        "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF" | "UGX"
        | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
        "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
        _ => 2,
    }
}

/// An instant in UTC to the millisecond, e.g. `2025-03-01 12:00:00.123`.
pub fn instant(at: &Timestamp) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// A duration in milliseconds at a useful precision: `850 ms`, `1.24 s`, `3 min 05 s`,
/// `2 h 04 min`.
pub fn millis(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1_000 {
        format!("{sign}{ms} ms")
    } else if ms < 60_000 {
        format!("{sign}{:.2} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{sign}{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!(
            "{sign}{} h {:02} min",
            ms / 3_600_000,
            (ms % 3_600_000) / 60_000
        )
    }
}

/// `Some(ms)` as [`millis`], `None` as `-`.
pub fn maybe_millis(ms: Option<i64>) -> String {
    ms.map_or_else(|| "-".to_owned(), millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_uses_the_currencys_minor_unit() {
        assert_eq!(money(&Money::new(12000, "EUR")), "120.00 EUR");
        assert_eq!(money(&Money::new(5, "EUR")), "0.05 EUR");
        assert_eq!(money(&Money::new(-1250, "USD")), "-12.50 USD");
        assert_eq!(money(&Money::new(1500, "JPY")), "1500 JPY");
        assert_eq!(money(&Money::new(1500, "KWD")), "1.500 KWD");
    }

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(millis(850), "850 ms");
        assert_eq!(millis(1_240), "1.24 s");
        assert_eq!(millis(185_000), "3 min 05 s");
        assert_eq!(millis(7_440_000), "2 h 04 min");
        assert_eq!(maybe_millis(None), "-");
    }
}
