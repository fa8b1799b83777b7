//! The time zone pages show times in: the person's own choice, else their company's (which an
//! owner sets), else UTC. Zones are IANA names (`Europe/Berlin`), checked against the tz
//! database that pairgate carries (chrono-tz), so a stored name always means a zone.

use chrono_tz::Tz;

/// A time zone of the tz database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone(Tz);

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    /// The zone of an IANA name, spelled exactly (`Europe/Berlin`, `UTC`).
    pub fn parse(name: &str) -> Option<Zone> {
        name.parse::<Tz>().ok().map(Zone)
    }

    /// The IANA name.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The zone, for formatting times.
    pub fn tz(&self) -> Tz {
        self.0
    }

    /// The first instant of `day` in this zone, in Unix ms (`None` for a day whose midnight the
    /// zone skips).
    pub fn day_start(&self, day: chrono::NaiveDate) -> Option<i64> {
        use chrono::TimeZone;
        let midnight = day.and_time(chrono::NaiveTime::MIN);
        let start = self.0.from_local_datetime(&midnight).earliest()?;
        Some(start.timestamp_millis())
    }

    /// The zones a person chooses from: every `Area/Place` of the database, and `UTC`, sorted.
    pub fn choices() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| z.name())
            .filter(|n| n.contains('/') && !n.starts_with("Etc/") && !n.starts_with("SystemV/"))
            .chain(["UTC"])
            .collect();
        names.sort_unstable();
        names
    }
}

/// Where the zone in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneSource {
    /// The person chose it.
    Own,
    /// The company's default.
    Company,
    /// Nobody chose one: UTC.
    Default,
}

/// A person's time zones: their own choice, their company's, and the one in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZones {
    pub own: Option<Zone>,
    pub company: Option<Zone>,
}

impl TimeZones {
    /// The zone times are shown in, and where it comes from.
    pub fn in_force(&self) -> (Zone, ZoneSource) {
        match (self.own, self.company) {
            (Some(z), _) => (z, ZoneSource::Own),
            (None, Some(z)) => (z, ZoneSource::Company),
            (None, None) => (Zone::UTC, ZoneSource::Default),
        }
    }

    /// The zone times are shown in.
    pub fn zone(&self) -> Zone {
        self.in_force().0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_zone_wins_then_the_company_then_utc() {
        let berlin = Zone::parse("Europe/Berlin");
        let tokyo = Zone::parse("Asia/Tokyo");
        assert!(berlin.is_some() && tokyo.is_some());
        let z = |own, company| TimeZones { own, company }.in_force();
        assert_eq!(z(berlin, tokyo), (berlin.unwrap(), ZoneSource::Own));
        assert_eq!(z(None, tokyo), (tokyo.unwrap(), ZoneSource::Company));
        assert_eq!(z(None, None), (Zone::UTC, ZoneSource::Default));
    }

    #[test]
    fn only_names_of_the_database_are_zones() {
        assert_eq!(
            Zone::parse("Europe/Berlin").map(|z| z.name()),
            Some("Europe/Berlin")
        );
        assert_eq!(Zone::parse("Mars/Olympus"), None);
        let choices = Zone::choices();
        assert!(choices.contains(&"Europe/Berlin") && choices.contains(&"UTC"));
        assert!(!choices.iter().any(|c| c.starts_with("Etc/")));
    }
}
