//! The operator's customers, lines and subscribed options, generated in memory.
//!
//! One random stream, consumed customer by customer, so the population depends on the
//! seed and the number of customers only. Identifiers are built with their check digits
//! and then parsed with the sb-core types, so an invalid one can never leave here.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate};
use rand::{Rng, RngCore};
use rand_pcg::Pcg64Mcg;
use sb_core::{Iban, Iccid, Imei, Imsi, Msisdn, TaxCode};

use crate::SimError;
use crate::catalog::{
    ADD_ONS, AUTO_TOPUP_OPTION, AddOn, BANK_ABI, ICCID_PREFIX, IMSI_PREFIX, MOBILE_PREFIXES, PLANS, Plan, ROUTER_TACS,
    SMARTPHONE_TACS, TABLET_TACS,
};
use crate::identifiers::{self, Scatter};
use crate::names::{FEMALE_NAMES, LEGAL_FORMS, MAIL_DOMAINS, MALE_NAMES, SURNAMES, TRADES};
use crate::places::{CITIES, FOREIGN_BIRTH_PLACES, STREETS};
use crate::rng::{self, Stream, pick};

/// Sex as written in the tax code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// Male.
    Male,
    /// Female.
    Female,
}

impl Sex {
    /// `M` or `F`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Male => "M",
            Self::Female => "F",
        }
    }
}

/// How a line pays for its usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payment {
    /// Credit topped up in advance.
    Prepaid,
    /// Billed monthly.
    Postpaid,
}

impl Payment {
    /// `prepaid` or `postpaid`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Prepaid => "prepaid",
            Self::Postpaid => "postpaid",
        }
    }
}

/// Where a line stands. Only active lines generate traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStatus {
    /// In service.
    Active,
    /// Temporarily barred (unpaid bill, lost SIM).
    Suspended,
    /// Ceased or ported out.
    Terminated,
}

impl LineStatus {
    /// `active`, `suspended` or `terminated`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
        }
    }
}

/// The kind of device a SIM sits in; it shapes the line's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceType {
    /// A phone: voice, SMS and data.
    Smartphone,
    /// A tablet: mostly data.
    Tablet,
    /// A fixed-wireless or mobile router: data only.
    Router,
}

impl DeviceType {
    /// `smartphone`, `tablet` or `router`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Smartphone => "smartphone",
            Self::Tablet => "tablet",
            Self::Router => "router",
        }
    }
}

/// A consumer customer.
#[derive(Debug, Clone)]
pub struct Person {
    /// First name.
    pub first_name: &'static str,
    /// Surname.
    pub last_name: &'static str,
    /// Sex.
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Cadastral code of the municipality (or `Z…` foreign state) of birth.
    pub birth_place: &'static str,
    /// Tax code derived from all of the above.
    pub tax_code: TaxCode,
}

/// A business customer.
#[derive(Debug, Clone)]
pub struct Company {
    /// Registered name.
    pub name: String,
    /// VAT number (partita IVA), 11 digits.
    pub vat_number: String,
}

/// Who the customer is.
#[derive(Debug, Clone)]
pub enum Party {
    /// A private person.
    Person(Person),
    /// A company.
    Company(Company),
}

/// A postal address in Italy.
#[derive(Debug, Clone)]
pub struct Address {
    /// Street name.
    pub street: &'static str,
    /// House number.
    pub number: u32,
    /// Municipality.
    pub city: &'static str,
    /// Province code (`RM`, `MI`, …).
    pub province: &'static str,
    /// Postcode (CAP), 5 digits.
    pub postcode: String,
}

/// A customer of the operator.
#[derive(Debug, Clone)]
pub struct Customer {
    /// CRM key, from 1.
    pub id: u64,
    /// Person or company.
    pub party: Party,
    /// Residence or registered office.
    pub address: Address,
    /// Contact e-mail.
    pub email: String,
    /// Bank account for direct debit: every company, some persons.
    pub iban: Option<Iban>,
    /// When the customer signed up.
    pub created_at: DateTime<FixedOffset>,
    /// Last change of the record.
    pub updated_at: DateTime<FixedOffset>,
}

impl Customer {
    /// `consumer` or `business`.
    pub fn kind(&self) -> &'static str {
        match self.party {
            Party::Person(_) => "consumer",
            Party::Company(_) => "business",
        }
    }
}

/// A line (SIM) of a customer.
#[derive(Debug, Clone)]
pub struct Line {
    /// CRM key, from 1.
    pub id: u64,
    /// The owning customer.
    pub customer_id: u64,
    /// Phone number, unique.
    pub msisdn: Msisdn,
    /// SIM serial, unique.
    pub iccid: Iccid,
    /// Subscriber identity, unique.
    pub imsi: Imsi,
    /// The device the SIM was last seen in.
    pub imei: Imei,
    /// Code of the tariff plan.
    pub plan: &'static str,
    /// Prepaid or postpaid.
    pub payment: Payment,
    /// Active, suspended or terminated.
    pub status: LineStatus,
    /// Device type.
    pub device: DeviceType,
    /// Whether the line tops up automatically under a threshold.
    pub auto_topup: bool,
    /// Activation time.
    pub activated_at: DateTime<FixedOffset>,
    /// Last change of the record.
    pub updated_at: DateTime<FixedOffset>,
}

/// An option a line subscribes to.
#[derive(Debug, Clone)]
pub struct LineOption {
    /// The line.
    pub line_id: u64,
    /// Code of the option.
    pub option: &'static str,
    /// When it was activated.
    pub activated_at: DateTime<FixedOffset>,
    /// Last change of the record.
    pub updated_at: DateTime<FixedOffset>,
}

/// Everything the operator's CRM holds.
#[derive(Debug, Clone)]
pub struct Population {
    /// The moment of the snapshot: every date is before it.
    pub as_of: DateTime<FixedOffset>,
    /// Plans on sale.
    pub plans: &'static [Plan],
    /// Options on sale.
    pub add_ons: &'static [AddOn],
    /// Customers, by id.
    pub customers: Vec<Customer>,
    /// Lines, by id.
    pub lines: Vec<Line>,
    /// Subscribed options, by line then option.
    pub line_options: Vec<LineOption>,
}

impl Population {
    /// Generates `customers` customers and their lines, as they stand at `as_of`.
    pub fn generate(seed: u64, customers: u32, as_of: DateTime<FixedOffset>) -> Result<Self, SimError> {
        let mut b = Builder::new(seed, customers, as_of);
        for id in 1..=u64::from(customers) {
            b.customer(id)?;
        }
        Ok(Population {
            as_of,
            plans: PLANS,
            add_ons: ADD_ONS,
            customers: b.customers,
            lines: b.lines,
            line_options: b.line_options,
        })
    }

    /// Lines that generate traffic.
    pub fn active_lines(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().filter(|l| l.status == LineStatus::Active)
    }
}

struct Builder {
    rng: Pcg64Mcg,
    as_of: DateTime<FixedOffset>,
    msisdns: Scatter,
    imsis: Scatter,
    iccid_base: u64,
    tax_codes: HashSet<[u8; 16]>,
    city_weights: Vec<(usize, u32)>,
    customers: Vec<Customer>,
    lines: Vec<Line>,
    line_options: Vec<LineOption>,
}

const MSISDN_SPACE: u64 = MOBILE_PREFIXES.len() as u64 * 10_000_000;
const IMSI_SPACE: u64 = 10_000_000_000;

impl Builder {
    fn new(seed: u64, customers: u32, as_of: DateTime<FixedOffset>) -> Self {
        let mut rng = rng::rng(seed, Stream::Population, 0);
        let msisdns = Scatter::new(rng.next_u64(), MSISDN_SPACE);
        let imsis = Scatter::new(rng.next_u64(), IMSI_SPACE);
        // SIMs come in lots with consecutive serials; 13 digits leave room for any line count.
        let iccid_base = rng.random_range(100_000_000_000..900_000_000_000);
        let expected_lines = customers as usize * 5 / 4;
        Self {
            rng,
            as_of,
            msisdns,
            imsis,
            iccid_base,
            tax_codes: HashSet::with_capacity(customers as usize),
            city_weights: CITIES.iter().enumerate().map(|(i, c)| (i, c.weight)).collect(),
            customers: Vec::with_capacity(customers as usize),
            lines: Vec::with_capacity(expected_lines),
            line_options: Vec::with_capacity(expected_lines / 2),
        }
    }

    /// A time between `from` and `to` (whole seconds, in the snapshot's offset).
    fn time_between(&mut self, from: DateTime<FixedOffset>, to: DateTime<FixedOffset>) -> DateTime<FixedOffset> {
        let span = (to - from).num_seconds().max(0);
        from + Duration::seconds(self.rng.random_range(0..=span))
    }

    fn customer(&mut self, id: u64) -> Result<(), SimError> {
        let business = self.rng.random_bool(0.1);
        let city = CITIES[pick(&mut self.rng, &self.city_weights)];
        let address = Address {
            street: STREETS[self.rng.random_range(0..STREETS.len())],
            number: self.rng.random_range(1..=220),
            city: city.name,
            province: city.province,
            postcode: format!("{:05}", self.rng.random_range(city.postcodes.0..=city.postcodes.1)),
        };
        let as_of = self.as_of;
        let created_at = self.time_between(as_of - Duration::days(15 * 365), as_of - Duration::days(1));
        let updated_at = self.time_between(created_at, as_of);
        let (party, email, iban) = if business {
            let (company, email) = self.company();
            (Party::Company(company), email, Some(self.iban()?))
        } else {
            let (person, email) = self.person(city.belfiore)?;
            let iban = if self.rng.random_bool(0.25) { Some(self.iban()?) } else { None };
            (Party::Person(person), email, iban)
        };
        let senior = matches!(&party, Party::Person(p) if as_of.year() - p.birth_date.year() >= 65);
        let has_iban = iban.is_some();
        self.customers.push(Customer { id, party, address, email, iban, created_at, updated_at });

        let count = if business {
            pick(&mut self.rng, &[(1, 40), (2, 22), (3, 14), (5, 12), (8, 7), (12, 3), (20, 2)])
        } else {
            pick(&mut self.rng, &[(1, 85), (2, 10), (3, 4), (4, 1)])
        };
        for n in 0..count {
            let device = match (business, n) {
                (false, 0) => DeviceType::Smartphone,
                (false, _) => pick(
                    &mut self.rng,
                    &[(DeviceType::Smartphone, 60), (DeviceType::Tablet, 25), (DeviceType::Router, 15)],
                ),
                (true, _) => pick(
                    &mut self.rng,
                    &[(DeviceType::Smartphone, 70), (DeviceType::Tablet, 10), (DeviceType::Router, 20)],
                ),
            };
            self.line(id, business, senior, has_iban, device, created_at)?;
        }
        Ok(())
    }

    fn person(&mut self, home: &'static str) -> Result<(Person, String), SimError> {
        let sex = if self.rng.random_bool(0.5) { Sex::Male } else { Sex::Female };
        let names = if sex == Sex::Male { MALE_NAMES } else { FEMALE_NAMES };
        let first_name = names[self.rng.random_range(0..names.len())];
        let last_name = SURNAMES[self.rng.random_range(0..SURNAMES.len())];
        let age_days = self.rng.random_range(18 * 365..88 * 365);
        let birth_date = self.as_of.date_naive() - Duration::days(age_days);
        let birth_place = match self.rng.random_range(0..100) {
            0..70 => home,
            70..90 => CITIES[pick(&mut self.rng, &self.city_weights)].belfiore,
            _ => pick(&mut self.rng, FOREIGN_BIRTH_PLACES),
        };
        let base = identifiers::tax_code(last_name, first_name, birth_date, sex, birth_place);
        // Two people with the same name, birth date and place get an omocodia variant,
        // as the revenue agency does; the CRM can then use the tax code as a natural key.
        let code = std::iter::once(base)
            .chain((1..=identifiers::OMOCODIA_VARIANTS).map(|n| identifiers::omocodia(base, n)))
            .find(|c| !self.tax_codes.contains(c))
            .unwrap_or(base);
        self.tax_codes.insert(code);
        let tax_code = TaxCode::parse(&String::from_utf8_lossy(&code))
            .map_err(|source| SimError::InvalidIdentifier { what: "tax code", source })?;

        let domain = pick(&mut self.rng, MAIL_DOMAINS);
        let email = match self.rng.random_range(0..3) {
            0 => format!("{}.{}@{domain}", mail_part(first_name), mail_part(last_name)),
            1 => format!(
                "{}.{}{:02}@{domain}",
                mail_part(first_name),
                mail_part(last_name),
                birth_date.year().rem_euclid(100)
            ),
            _ => format!(
                "{}{}{}@{domain}",
                &mail_part(first_name)[..1],
                mail_part(last_name),
                self.rng.random_range(1..1000)
            ),
        };
        let person = Person { first_name, last_name, sex, birth_date, birth_place, tax_code };
        Ok((person, email))
    }

    fn company(&mut self) -> (Company, String) {
        let surname = SURNAMES[self.rng.random_range(0..SURNAMES.len())];
        let trade = TRADES[self.rng.random_range(0..TRADES.len())];
        let form = pick(&mut self.rng, LEGAL_FORMS);
        let name = match self.rng.random_range(0..3) {
            0 => format!("{surname} {trade} {form}"),
            1 => format!("{trade} {surname} & C. {form}"),
            _ => format!("{} {trade} {form}", CITIES[self.rng.random_range(0..CITIES.len())].name),
        };
        let vat_number = identifiers::vat_number(self.rng.random_range(0..10_000_000), self.rng.random_range(1..=100));
        let slug: String = name
            .split(' ')
            .take(2)
            .flat_map(|w| w.chars())
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let mailbox = ["info", "amministrazione", "ufficio"][self.rng.random_range(0..3)];
        (Company { name, vat_number }, format!("{mailbox}@{slug}.it"))
    }

    fn iban(&mut self) -> Result<Iban, SimError> {
        let abi = BANK_ABI[self.rng.random_range(0..BANK_ABI.len())];
        let text =
            identifiers::iban_it(abi, self.rng.random_range(1000..99_999), self.rng.random_range(0..1_000_000_000_000));
        Iban::parse(&text).map_err(|source| SimError::InvalidIdentifier { what: "iban", source })
    }

    fn line(
        &mut self,
        customer_id: u64,
        business: bool,
        senior: bool,
        has_iban: bool,
        device: DeviceType,
        customer_since: DateTime<FixedOffset>,
    ) -> Result<(), SimError> {
        let index = self.lines.len() as u64;
        let id = index + 1;
        let payment = match (business, self.rng.random_range(0..100)) {
            (false, 0..90) | (true, 0..30) => Payment::Prepaid,
            _ => Payment::Postpaid,
        };
        let plan = match (device, payment, business) {
            (DeviceType::Router, ..) => "CASA5G",
            (DeviceType::Tablet, ..) => "DATI150",
            (DeviceType::Smartphone, Payment::Postpaid, true) => "BIZ250",
            (DeviceType::Smartphone, Payment::Postpaid, false) => {
                pick(&mut self.rng, &[("EVO100", 50), ("EVO200", 50)])
            }
            (DeviceType::Smartphone, Payment::Prepaid, _) if senior && self.rng.random_bool(0.5) => "SENIOR",
            (DeviceType::Smartphone, Payment::Prepaid, _) => {
                pick(&mut self.rng, &[("EVO30", 40), ("EVO100", 38), ("EVO200", 22)])
            }
        };
        let status =
            pick(&mut self.rng, &[(LineStatus::Active, 92), (LineStatus::Suspended, 5), (LineStatus::Terminated, 3)]);
        let auto_topup = payment == Payment::Prepaid && self.rng.random_bool(if has_iban { 0.6 } else { 0.05 });
        let activated_at = self.time_between(customer_since, self.as_of - Duration::hours(1));
        let updated_at = self.time_between(activated_at, self.as_of);

        let m = self.msisdns.map(index);
        let msisdn = format!("39{}{:07}", MOBILE_PREFIXES[(m / 10_000_000) as usize], m % 10_000_000);
        let iccid = identifiers::with_luhn(format!("{ICCID_PREFIX}{:013}", self.iccid_base + index));
        let imsi = format!("{IMSI_PREFIX}{:010}", self.imsis.map(index));
        let tacs = match device {
            DeviceType::Smartphone => SMARTPHONE_TACS,
            DeviceType::Tablet => TABLET_TACS,
            DeviceType::Router => ROUTER_TACS,
        };
        let tac = tacs[self.rng.random_range(0..tacs.len())];
        let imei = identifiers::with_luhn(format!("{tac}{:06}", self.rng.random_range(0..1_000_000)));
        let invalid = |what| move |source| SimError::InvalidIdentifier { what, source };
        self.lines.push(Line {
            id,
            customer_id,
            msisdn: Msisdn::parse(&msisdn).map_err(invalid("msisdn"))?,
            iccid: Iccid::parse(&iccid).map_err(invalid("iccid"))?,
            imsi: Imsi::parse(&imsi).map_err(invalid("imsi"))?,
            imei: Imei::parse(&imei).map_err(invalid("imei"))?,
            plan,
            payment,
            status,
            device,
            auto_topup,
            activated_at,
            updated_at,
        });

        // Up to three of the optional add-ons, in catalogue order, plus automatic top-up.
        let optional = ADD_ONS.iter().filter(|a| a.code != AUTO_TOPUP_OPTION).count();
        let wanted = pick(&mut self.rng, &[(0usize, 60), (1, 25), (2, 10), (3, 5)]);
        let mut chosen = 0u32;
        while (chosen.count_ones() as usize) < wanted {
            chosen |= 1 << self.rng.random_range(0..optional);
        }
        for (i, add_on) in ADD_ONS.iter().enumerate() {
            let subscribed = if add_on.code == AUTO_TOPUP_OPTION { auto_topup } else { chosen & (1 << i) != 0 };
            if subscribed {
                let activated_at = self.time_between(activated_at, self.as_of);
                let updated_at = self.time_between(activated_at, self.as_of);
                self.line_options.push(LineOption { line_id: id, option: add_on.code, activated_at, updated_at });
            }
        }
        Ok(())
    }
}

/// Lower-case ASCII letters of a name, for e-mail addresses.
fn mail_part(name: &str) -> String {
    name.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::default_start;

    #[test]
    fn the_population_has_the_expected_shape() {
        let p = Population::generate(7, 2000, default_start()).unwrap();
        assert_eq!(p.customers.len(), 2000);
        let business = p.customers.iter().filter(|c| c.kind() == "business").count();
        assert!((120..300).contains(&business), "{business}");
        assert!(p.lines.len() > 2000 && p.lines.len() < 4000, "{}", p.lines.len());
        let prepaid = p.lines.iter().filter(|l| l.payment == Payment::Prepaid).count();
        assert!(prepaid * 10 > p.lines.len() * 7, "mostly prepaid");
        let active = p.active_lines().count();
        assert!(active * 100 > p.lines.len() * 88, "mostly active");
        assert!(p.lines.iter().all(|l| l.activated_at < p.as_of));
        let ids: HashSet<_> = p.lines.iter().map(|l| l.msisdn.as_str()).collect();
        assert_eq!(ids.len(), p.lines.len());
    }

    #[test]
    fn the_same_seed_gives_the_same_population() {
        let a = Population::generate(3, 300, default_start()).unwrap();
        let b = Population::generate(3, 300, default_start()).unwrap();
        assert_eq!(
            format!("{:?}", a.customers.last().map(|c| &c.email)),
            format!("{:?}", b.customers.last().map(|c| &c.email))
        );
        assert_eq!(
            a.lines.iter().map(|l| l.imsi.as_str()).collect::<Vec<_>>(),
            b.lines.iter().map(|l| l.imsi.as_str()).collect::<Vec<_>>()
        );
    }
}
