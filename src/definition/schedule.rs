//! The schedule vocabulary of the workflow format: how often (`every`), which day of the month
//! or week, and where a day that is not a working day rolls to. The doc comments speak to process
//! owners (they become the JSON Schema's descriptions); the arithmetic on these words lives in
//! [`crate::calendar::recurrence`].

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;

/// How often the schedule fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Every day, weekends and holidays included (use `roll` to move off non-working days).
    Day,
    /// Every working day of the calendar: weekdays that are not public holidays, and make-up
    /// working days (调休).
    WorkingDay,
    /// Once a week, on `weekday`.
    Week,
    /// Once a month, on `day`.
    Month,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    /// 星期一(周一)
    Monday,
    /// 星期二(周二)
    Tuesday,
    /// 星期三(周三)
    Wednesday,
    /// 星期四(周四)
    Thursday,
    /// 星期五(周五)
    Friday,
    /// 星期六(周六): a weekend day, unless the calendar makes it a make-up working day (调休).
    Saturday,
    /// 星期日(周日): a weekend day, unless the calendar makes it a make-up working day (调休).
    Sunday,
}

impl Weekday {
    /// The same day for the calendar's arithmetic, which is done with chrono.
    pub(crate) fn to_chrono(self) -> chrono::Weekday {
        match self {
            Weekday::Monday => chrono::Weekday::Mon,
            Weekday::Tuesday => chrono::Weekday::Tue,
            Weekday::Wednesday => chrono::Weekday::Wed,
            Weekday::Thursday => chrono::Weekday::Thu,
            Weekday::Friday => chrono::Weekday::Fri,
            Weekday::Saturday => chrono::Weekday::Sat,
            Weekday::Sunday => chrono::Weekday::Sun,
        }
    }
}

/// The day of the month a monthly schedule fires: a number from 1 to 31, or `last`,
/// `first_working_day`, `last_working_day`. A day the month does not have (31 in April, 30 in
/// February) means the month's last day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, JsonSchema)]
#[serde(untagged)]
pub enum MonthDay {
    /// A day of the month, 1 to 31.
    Day(#[schemars(range(min = 1, max = 31))] u32),
    /// A day found from the calendar: `last`, `first_working_day`, `last_working_day`.
    Named(NamedDay),
}

/// A day of the month found from the calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamedDay {
    /// The month's last day, whatever its length.
    Last,
    /// The month's first working day.
    FirstWorkingDay,
    /// The month's last working day (which may be a make-up Saturday).
    LastWorkingDay,
}

/// What to do when the day falls on a non-working day (a weekend or a public holiday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Roll {
    /// Fire on that day anyway.
    #[default]
    None,
    /// Fire on the next working day instead (顺延至正常工作日).
    NextWorkingDay,
    /// Fire on the working day before instead.
    PreviousWorkingDay,
}

/// The end of the parser error for a day of the month that is none: the YAML reader knows it
/// by this text and gives it back in the reader's language (`diag-not-a-month-day`).
pub(crate) const NOT_A_MONTH_DAY: &str = "is not a day of the month: write a number from 1 to 31, `last`, `first_working_day` or `last_working_day`";

impl<'de> Deserialize<'de> for MonthDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MonthDayVisitor;
        impl Visitor<'_> for MonthDayVisitor {
            type Value = MonthDay;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a day of the month (1-31), `last`, `first_working_day` or `last_working_day`",
                )
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<MonthDay, E> {
                Ok(MonthDay::Day(u32::try_from(n).unwrap_or(u32::MAX)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<MonthDay, E> {
                Ok(MonthDay::Day(u32::try_from(n).unwrap_or(0)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<MonthDay, E> {
                match s.trim() {
                    "last" => Ok(MonthDay::Named(NamedDay::Last)),
                    "first_working_day" => Ok(MonthDay::Named(NamedDay::FirstWorkingDay)),
                    "last_working_day" => Ok(MonthDay::Named(NamedDay::LastWorkingDay)),
                    other => other
                        .parse::<u32>()
                        .map(MonthDay::Day)
                        .map_err(|_| E::custom(format!("`{other}` {NOT_A_MONTH_DAY}"))),
                }
            }
        }
        d.deserialize_any(MonthDayVisitor)
    }
}
