//! Italian municipalities (with their cadastral code for tax codes), streets, and the
//! foreign states used as birth places.

/// A municipality customers live in or were born in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct City {
    pub name: &'static str,
    /// Cadastral (Belfiore) code, part of the tax code of people born there.
    pub belfiore: &'static str,
    pub province: &'static str,
    /// Lowest and highest postcode (CAP) of the municipality.
    pub postcodes: (u32, u32),
    /// Relative number of customers living there.
    pub weight: u32,
    /// Geographic area code of landlines there, without the leading 0.
    pub area_code: &'static str,
}

const fn city(
    name: &'static str,
    belfiore: &'static str,
    province: &'static str,
    postcodes: (u32, u32),
    weight: u32,
    area_code: &'static str,
) -> City {
    City { name, belfiore, province, postcodes, weight, area_code }
}

/// The 24 largest municipalities, weighted roughly by population.
pub(crate) const CITIES: &[City] = &[
    city("Roma", "H501", "RM", (118, 199), 280, "6"),
    city("Milano", "F205", "MI", (20121, 20162), 140, "2"),
    city("Napoli", "F839", "NA", (80121, 80147), 95, "81"),
    city("Torino", "L219", "TO", (10121, 10156), 85, "11"),
    city("Palermo", "G273", "PA", (90121, 90151), 63, "91"),
    city("Genova", "D969", "GE", (16121, 16167), 56, "10"),
    city("Bologna", "A944", "BO", (40121, 40141), 39, "51"),
    city("Firenze", "D612", "FI", (50121, 50145), 37, "55"),
    city("Bari", "A662", "BA", (70121, 70132), 32, "80"),
    city("Catania", "C351", "CT", (95121, 95131), 30, "95"),
    city("Venezia", "L736", "VE", (30121, 30176), 25, "41"),
    city("Verona", "L781", "VR", (37121, 37142), 26, "45"),
    city("Messina", "F158", "ME", (98121, 98168), 22, "90"),
    city("Padova", "G224", "PD", (35121, 35143), 21, "49"),
    city("Trieste", "L424", "TS", (34121, 34151), 20, "40"),
    city("Brescia", "B157", "BS", (25121, 25136), 20, "30"),
    city("Parma", "G337", "PR", (43121, 43126), 20, "521"),
    city("Taranto", "L049", "TA", (74121, 74123), 19, "99"),
    city("Prato", "G999", "PO", (59100, 59100), 19, "574"),
    city("Modena", "F257", "MO", (41121, 41126), 18, "59"),
    city("Reggio Calabria", "H224", "RC", (89121, 89135), 17, "965"),
    city("Perugia", "G478", "PG", (6121, 6135), 16, "75"),
    city("Cagliari", "B354", "CA", (9121, 9134), 15, "70"),
    city("Livorno", "E625", "LI", (57121, 57128), 15, "586"),
];

/// Foreign states as birth places: their cadastral code (`Z…`) and weight.
pub(crate) const FOREIGN_BIRTH_PLACES: &[(&str, u32)] = &[
    ("Z129", 25), // Romania
    ("Z100", 15), // Albania
    ("Z330", 14), // Morocco
    ("Z210", 10), // China
    ("Z138", 8),  // Ukraine
    ("Z216", 6),  // Philippines
    ("Z222", 6),  // India
    ("Z112", 5),  // Germany
    ("Z110", 5),  // France
    ("Z602", 6),  // Brazil
];

/// Street names, found in nearly every Italian town.
pub(crate) const STREETS: &[&str] = &[
    "Via Roma",
    "Via Giuseppe Garibaldi",
    "Via Giuseppe Mazzini",
    "Via Cavour",
    "Corso Italia",
    "Via Giuseppe Verdi",
    "Via Dante Alighieri",
    "Via Guglielmo Marconi",
    "Piazza della Repubblica",
    "Via Vittorio Emanuele II",
    "Via XX Settembre",
    "Via Giacomo Matteotti",
    "Via Antonio Gramsci",
    "Corso Vittorio Emanuele",
    "Viale Europa",
    "Via dei Mille",
    "Via Alessandro Manzoni",
    "Via Giacomo Leopardi",
    "Via San Francesco",
    "Via Nazionale",
    "Via Giovanni Pascoli",
    "Via Giosue Carducci",
    "Viale della Liberta",
    "Via Giacomo Puccini",
    "Via Torino",
    "Via Milano",
    "Via Firenze",
    "Via Napoli",
    "Via Kennedy",
    "Largo Garibaldi",
];
