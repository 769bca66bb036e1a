//! Calendar dates for LiveCodeBench windows: `YYYY-MM-DD`, compared by day.
//!
//! LiveCodeBench `contest_date` values are ISO datetimes
//! (`2024-08-03T00:00:00`, sometimes with a time of day); windows compare the
//! date part inclusively, as NeMo-Skills does (`docs/data-formats.md` §2.3).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A calendar day. Ordering is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

/// A date string that is not `YYYY-MM-DD[T…]`.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{0}` is not a date of the form YYYY-MM-DD")]
pub struct DateError(pub String);

impl Date {
    /// Parses `YYYY-MM-DD`, ignoring anything after the tenth byte when it is
    /// a `T` or a space followed by a time (ISO datetimes).
    pub fn parse_prefix(text: &str) -> Result<Self, DateError> {
        let err = || DateError(text.to_string());
        let head = text.get(..10).ok_or_else(err)?;
        match text.as_bytes().get(10) {
            None | Some(b'T') | Some(b' ') => {}
            Some(_) => return Err(err()),
        }
        let b = head.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let digits = |s: &str| -> Result<u16, DateError> {
            if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().map_err(|_| err())
            } else {
                Err(err())
            }
        };
        let year = digits(&head[..4])?;
        let month = digits(&head[5..7])?;
        let day = digits(&head[8..10])?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(err());
        }
        Ok(Self {
            year,
            month: month as u8,
            day: day as u8,
        })
    }
}

impl FromStr for Date {
    type Err = DateError;

    /// Exactly `YYYY-MM-DD`.
    fn from_str(text: &str) -> Result<Self, DateError> {
        if text.len() != 10 {
            return Err(DateError(text.to_string()));
        }
        Self::parse_prefix(text)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateWindow {
    pub from: Date,
    pub to: Date,
}

impl DateWindow {
    /// True when `from <= date <= to`.
    pub fn contains(&self, date: Date) -> bool {
        self.from <= date && date <= self.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_datetimes() {
        let d = Date::parse_prefix("2025-01-04T18:30:00").unwrap();
        assert_eq!(d.to_string(), "2025-01-04");
        assert_eq!("2024-08-01".parse::<Date>().unwrap().month, 8);
        for bad in [
            "2024-8-01",
            "2024-13-01",
            "20240801",
            "2024-08-01x",
            "abcd-ef-gh",
        ] {
            assert!(Date::parse_prefix(bad).is_err(), "{bad}");
        }
        assert!("2024-08-01T00:00:00".parse::<Date>().is_err());
    }

    #[test]
    fn window_is_inclusive_by_day() {
        let w = DateWindow {
            from: "2024-08-01".parse().unwrap(),
            to: "2025-01-31".parse().unwrap(),
        };
        assert!(w.contains(Date::parse_prefix("2025-01-31T23:59:00").unwrap()));
        assert!(w.contains(Date::parse_prefix("2024-08-01T00:00:00").unwrap()));
        assert!(!w.contains(Date::parse_prefix("2024-07-31T23:59:59").unwrap()));
        assert!(!w.contains(Date::parse_prefix("2025-02-01T00:00:00").unwrap()));
    }
}
