//! Plausible given names and surnames per country, for synthetic people. Lists are short on
//! purpose: variety matters less than names a reader recognises as belonging together.

pub struct NamePool {
    pub male: &'static [&'static str],
    pub female: &'static [&'static str],
    pub surnames: &'static [&'static str],
}

const NG: NamePool = NamePool {
    male: &[
        "Chinedu",
        "Emeka",
        "Oluwaseun",
        "Babatunde",
        "Ibrahim",
        "Musa",
        "Tunde",
        "Obinna",
        "Ifeanyi",
        "Segun",
        "Yakubu",
        "Kelechi",
        "Adebayo",
        "Uche",
        "Aliyu",
        "Nnamdi",
    ],
    female: &[
        "Ngozi",
        "Chiamaka",
        "Aisha",
        "Funmilayo",
        "Adaeze",
        "Zainab",
        "Yetunde",
        "Nkechi",
        "Folake",
        "Hauwa",
        "Ifeoma",
        "Bukola",
        "Amaka",
        "Temitope",
        "Halima",
        "Uchenna",
    ],
    surnames: &[
        "Okafor", "Adeyemi", "Bello", "Eze", "Ogunleye", "Abubakar", "Nwosu", "Okonkwo", "Balogun",
        "Ibekwe", "Danjuma", "Olawale", "Chukwu", "Adewale", "Suleiman", "Obi",
    ],
};

const GH: NamePool = NamePool {
    male: &[
        "Kwame", "Kofi", "Yaw", "Kwabena", "Kwaku", "Kojo", "Nana", "Ebo", "Fiifi", "Kweku",
    ],
    female: &[
        "Ama", "Akosua", "Abena", "Efua", "Adwoa", "Yaa", "Esi", "Afua", "Akua", "Araba",
    ],
    surnames: &[
        "Mensah", "Owusu", "Boateng", "Asante", "Appiah", "Osei", "Agyeman", "Ansah", "Darko",
        "Quaye", "Tetteh", "Amoah",
    ],
};

const KE: NamePool = NamePool {
    male: &[
        "Kibet", "Otieno", "Kamau", "Kiprono", "Mwangi", "Odhiambo", "Njoroge", "Kipchoge",
        "Mutua", "Baraka",
    ],
    female: &[
        "Akinyi", "Wambui", "Njeri", "Chebet", "Atieno", "Wanjiku", "Nyambura", "Jeptoo", "Mumbua",
        "Zawadi",
    ],
    surnames: &[
        "Ochieng",
        "Kariuki",
        "Kiplagat",
        "Wafula",
        "Maina",
        "Onyango",
        "Kimani",
        "Cheruiyot",
        "Muriuki",
        "Omondi",
        "Githinji",
        "Rotich",
    ],
};

const ZA: NamePool = NamePool {
    male: &[
        "Sipho", "Thabo", "Bongani", "Mandla", "Themba", "Lwazi", "Sizwe", "Kagiso", "Pieter",
        "Johan",
    ],
    female: &[
        "Nomvula", "Thandiwe", "Lerato", "Zanele", "Naledi", "Palesa", "Ayanda", "Busisiwe",
        "Annelie", "Mpho",
    ],
    surnames: &[
        "Nkosi",
        "Dlamini",
        "Mokoena",
        "Khumalo",
        "Ndlovu",
        "Van der Merwe",
        "Botha",
        "Mthembu",
        "Zulu",
        "Naidoo",
        "Molefe",
        "Pillay",
    ],
};

const UG: NamePool = NamePool {
    male: &[
        "Mukasa",
        "Ssemakula",
        "Okello",
        "Kato",
        "Byaruhanga",
        "Tumusiime",
        "Ochen",
        "Musoke",
    ],
    female: &[
        "Nakato",
        "Babirye",
        "Namutebi",
        "Akello",
        "Kyomuhendo",
        "Nansubuga",
        "Atim",
        "Namata",
    ],
    surnames: &[
        "Ssewanyana",
        "Kiggundu",
        "Mugisha",
        "Opio",
        "Nsubuga",
        "Tumwine",
        "Lubega",
        "Ouma",
    ],
};

const ZM: NamePool = NamePool {
    male: &[
        "Mwila", "Chanda", "Mulenga", "Bwalya", "Kabwe", "Musonda", "Chilufya", "Lungu",
    ],
    female: &[
        "Natasha", "Mwape", "Chileshe", "Mutale", "Namukolo", "Thandiwe", "Luyando", "Mapalo",
    ],
    surnames: &[
        "Banda", "Phiri", "Tembo", "Mwanza", "Zulu", "Sakala", "Ngoma", "Mumba",
    ],
};

/// The pool for a country code; unknown countries borrow Nigeria's.
pub fn pool(country: &str) -> &'static NamePool {
    match country {
        "GH" => &GH,
        "KE" => &KE,
        "ZA" => &ZA,
        "UG" => &UG,
        "ZM" => &ZM,
        _ => &NG,
    }
}

/// The country's name as the ID authority reports it in Enhanced KYC results.
pub fn country_name(country: &str) -> &'static str {
    match country {
        "CI" => "Côte d'Ivoire",
        "GH" => "Ghana",
        "KE" => "Kenya",
        "NG" => "Nigeria",
        "UG" => "Uganda",
        "ZA" => "South Africa",
        "ZM" => "Zambia",
        "ZW" => "Zimbabwe",
        _ => "Unknown",
    }
}
