//! Dates as SpamAssassin reads them, leniently (`DATE_IN_PAST_*`, `DATE_IN_FUTURE_*`, the
//! Outlook Message-ID check): day-month-year or month-day-time-year, two- and three-digit
//! years, named time zones, out-of-range fields pulled back, years before 1970 made 1970.
//! And when the message arrived: the Received dates after setting aside the fields this
//! host and fetchmail add.

use super::{Ctx, Func, num};
use regex::Regex;
use std::sync::LazyLock;

pub(super) fn lookup(name: &str) -> Option<Func> {
    Some(match name {
        "check_for_shifted_date" => shifted_date,
        _ => return None,
    })
}

fn re(p: &str) -> Regex {
    crate::spam::builtin_regex(p)
}

static DMY4: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i) (\d+) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "));
static MDTY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d+) \d+:\d+:\d+ (\d{4}) ")
});
static DMY2: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i) (\d+) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{2,3}) ")
});
static HMS: LazyLock<Regex> = LazyLock::new(|| re(r" (\d?\d):(\d\d)(:(\d\d))? "));
static NUMERIC_TZ: LazyLock<Regex> = LazyLock::new(|| re(r" ([-+])(\d\d)(\d\d) "));
static NAMED_TZ: LazyLock<Regex> = LazyLock::new(|| re(r"\b([A-Z]{2,4}(?:-DST)?)\b"));
/// A date inside a Received field.
pub(super) static RCVD_DATE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\s.?\d+ \S\S\S \d+ \d+:\d+:\d+ \S+"));

/// Named zones and their offsets in minutes; others count as UTC.
const ZONES: &[(&str, i64)] = &[
    ("UT", 0),
    ("UTC", 0),
    ("GMT", 0),
    ("NDT", -150),
    ("AST", -240),
    ("ADT", -180),
    ("NST", -210),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
    ("HST", -600),
    ("AKST", -540),
    ("AKDT", -480),
    ("HADT", -540),
    ("HAST", -600),
    ("BST", 60),
    ("IST", 60),
    ("WET", 0),
    ("WEST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("MSD", 240),
    ("MET", 60),
    ("MEZ", 60),
    ("MEST", 120),
    ("MESZ", 120),
    ("BRST", -120),
    ("BRT", -180),
    ("AEST", 600),
    ("AEDT", 660),
    ("ACST", 570),
    ("ACDT", 630),
    ("AWST", 480),
    ("NZST", 720),
    ("NZDT", 780),
    ("JST", 540),
    ("KST", 540),
    ("HKT", 480),
    ("SGT", 480),
    ("PHT", 480),
    ("IDT", 180),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Seconds since the epoch, or `None` when no date part is found.
pub fn parse_date(date: &str) -> Option<i64> {
    let mut s = format!(" {date} ").replace(',', " ");
    s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s = format!(" {s} ");
    // The date forms in SpamAssassin's order, with the groups of day, month and year; the
    // matched text is taken out before the time and zone are looked for.
    let forms: [(&Regex, usize, usize, usize); 3] =
        [(&DMY4, 1, 2, 3), (&MDTY, 2, 1, 3), (&DMY2, 1, 2, 3)];
    let (dd, mon, year_text) = forms.iter().find_map(|(re, d, m, y)| {
        let c = re.captures(&s)?;
        let found = (
            c[*d].to_string(),
            c[*m].to_ascii_lowercase(),
            c[*y].to_string(),
        );
        s = re.replace(&s, " ").into_owned();
        Some(found)
    })?;
    let mut yyyy: i64 = year_text.parse().ok()?;
    if year_text.len() == 2 && yyyy < 50 {
        yyyy += 2000;
    } else if year_text.len() != 4 {
        yyyy += 1900;
    }
    let (mut hh, mut mm, mut ss) = (0i64, 0i64, 0i64);
    if let Some(c) = HMS.captures(&s) {
        hh = c[1].parse().unwrap_or(0);
        mm = c[2].parse().unwrap_or(0);
        ss = c.get(4).and_then(|x| x.as_str().parse().ok()).unwrap_or(0);
        s = HMS.replace(&s, " ").into_owned();
    }
    let tz_minutes = if let Some(c) = NUMERIC_TZ.captures(&s) {
        let v = c[2].parse::<i64>().unwrap_or(0) * 60 + c[3].parse::<i64>().unwrap_or(0);
        if &c[1] == "-" { -v } else { v }
    } else {
        NAMED_TZ
            .captures(&s)
            .and_then(|c| ZONES.iter().find(|(n, _)| *n == &c[1]).map(|(_, m)| *m))
            .unwrap_or(0)
    };
    let mut mmm = MONTHS
        .iter()
        .position(|m| *m == mon)
        .map_or(0, |i| i as i64 + 1);
    let mut dd: i64 = dd.parse().unwrap_or(0);
    ss = ss.min(59);
    mm = mm.min(59);
    hh = hh.min(23);
    let leap = yyyy % 4 == 0 && (yyyy % 100 != 0 || yyyy % 400 == 0);
    let max_dd = match mmm {
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 31,
    };
    if dd > max_dd {
        dd = 1;
        mmm += 1;
        if mmm > 12 {
            mmm = 1;
            yyyy += 1;
        }
    }
    yyyy = yyyy.clamp(1970, 2037);
    if mmm == 0 || dd == 0 {
        return None;
    }
    let t = days_from_civil(yyyy, mmm, dd) * 86400 + hh * 3600 + mm * 60 + ss;
    Some((t - tz_minutes * 60).max(0))
}

/// The Received dates SpamAssassin compares Date with: a first field added on this host
/// (from localhost or 127.0.0.1, qmail's `invoked by uid`) and a fetchmail field under it
/// are set aside (a lone local field stays).
fn received_times(ctx: &Ctx) -> Vec<i64> {
    let mut received = ctx.view.headers.raw_values("Received");
    let is_local = |r: &str| {
        let from_local = r.find("from ").is_some_and(|i| {
            let rest = &r[i + 5..];
            rest.starts_with("localhost ")
                || rest.split(' ').take(3).any(|w| w.contains("127.0.0.1"))
        });
        from_local || (r.contains("qmail ") && r.contains(" invoked by uid "))
    };
    let mut local = 0;
    if received.first().is_some_and(|r| is_local(r)) {
        local = 1;
    }
    let fetchmail = received
        .get(local)
        .is_some_and(|r| r.contains("by localhost with ") && r.contains("(fetchmail-"));
    let skip = if fetchmail { local + 1 } else { 0 };
    received
        .drain(skip..)
        .filter_map(|r| RCVD_DATE.find(&r).and_then(|m| parse_date(m.as_str())))
        .collect()
}

/// `Date:` (or `Resent-Date:`) minus the closest Received date, in hours, within
/// [min, max) (`undef` is open). No Date or no Received date: a difference of 0.
fn shifted_date(ctx: &Ctx, args: &[String]) -> bool {
    let diff = *ctx.view.date_shift.get_or_init(|| {
        let h = &ctx.view.headers;
        let date = ["Resent-Date", "Date"]
            .iter()
            .flat_map(|n| h.raw_values(n))
            .find_map(|d| parse_date(&d));
        let mut diff = 0i64;
        if let Some(date) = date {
            let mut diffs: Vec<i64> = received_times(ctx).iter().map(|t| date - t).collect();
            if diffs.len() > 1 && diffs.last() == Some(&0) {
                diffs.pop();
            }
            if let Some(d) = diffs.iter().min_by_key(|d| d.abs()) {
                diff = *d;
            }
        }
        diff
    });
    let hours = diff as f64;
    num(args, 0).is_none_or(|min| hours >= min * 3600.0)
        && num(args, 1).is_none_or(|max| hours < max * 3600.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_dates() {
        assert_eq!(
            parse_date("Thu, 22 Aug 2002 13:19:44 +0100"),
            Some(1030018784)
        );
        assert_eq!(parse_date("22 Aug 2002 12:19:44 GMT"), Some(1030018784));
        // ctime style: SpamAssassin's pattern takes the time with the date, so it reads
        // midnight (EDT here).
        assert_eq!(parse_date("Thu Aug 22 08:19:44 2002 EDT"), Some(1029988800));
        // Two-digit years, years before 1970 and days past the month's end.
        assert_eq!(parse_date("22 Aug 02 12:19:44 +0000"), Some(1030018784));
        assert_eq!(
            parse_date("Thu, 22 Aug 0102 12:07:35 +0800"),
            parse_date("22 Aug 1970 12:07:35 +0800")
        );
        assert_eq!(
            parse_date("31 Feb 2002 00:00:00 +0000"),
            parse_date("1 Mar 2002 00:00:00 +0000")
        );
        assert_eq!(parse_date("no date here"), None);
    }
}
