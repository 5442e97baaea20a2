//! Brazilian formatting for people: money as `R$ 1.234,56`, dates as
//! `31/12/2024`, shares as `12,3%`. Machine output (JSON) never uses these.

use chrono::NaiveDate;

/// Group the digits of a non-negative integer with dots: `1234567` → `1.234.567`.
fn group_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(ch);
    }
    out
}

/// A number with Brazilian separators and `decimals` decimal places:
/// `1234.5` → `1.234,50` (2 decimals).
pub fn number(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return "—".to_string();
    }
    let factor = 10f64.powi(decimals as i32);
    let scaled = (x.abs() * factor).round();
    let int_part = (scaled / factor).trunc() as u64;
    let frac = (scaled - int_part as f64 * factor).round() as u64;
    let sign = if x < 0.0 && scaled > 0.0 { "-" } else { "" };
    if decimals == 0 {
        format!("{sign}{}", group_thousands(int_part))
    } else {
        format!(
            "{sign}{},{:0width$}",
            group_thousands(int_part),
            frac,
            width = decimals
        )
    }
}

/// Money in reais: `R$ 1.234,56` (negative: `-R$ 12,00`).
pub fn brl(x: f64) -> String {
    let n = number(x.abs(), 2);
    if x < 0.0 && n != "0,00" {
        format!("-R$ {n}")
    } else {
        format!("R$ {n}")
    }
}

/// A share as a percentage with one decimal: `0.1234` → `12,3%`.
pub fn percent(x: f64) -> String {
    format!("{}%", number(x * 100.0, 1))
}

/// A date the Brazilian way: `31/12/2024`.
pub fn date(d: NaiveDate) -> String {
    d.format("%d/%m/%Y").to_string()
}

/// A `YYYY-MM` month as `12/2024`.
pub fn month(ym: &str) -> String {
    match ym.split_once('-') {
        Some((y, m)) => format!("{m}/{y}"),
        None => ym.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_brazilians_read() {
        assert_eq!(brl(1234567.891), "R$ 1.234.567,89");
        assert_eq!(brl(0.5), "R$ 0,50");
        assert_eq!(brl(-12.0), "-R$ 12,00");
        assert_eq!(brl(999.999), "R$ 1.000,00");
        assert_eq!(number(1000.0, 0), "1.000");
        assert_eq!(percent(0.1234), "12,3%");
        assert_eq!(
            date(NaiveDate::from_ymd_opt(2024, 12, 31).expect("date")),
            "31/12/2024"
        );
        assert_eq!(month("2024-03"), "03/2024");
        assert_eq!(number(f64::NAN, 2), "—");
    }
}
