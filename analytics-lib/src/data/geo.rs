//! Brazilian geography used by the generator and the maps: the 27 federative
//! units (UF) and their largest cities, with real coordinates (WGS84, city
//! centre) and populations (2022 census, rounded to thousands).

/// A federative unit of Brazil.
#[derive(Debug, Clone, Copy)]
pub struct State {
    pub uf: &'static str,
    pub name: &'static str,
    pub region: Region,
    /// Coordinates of the capital, used as the state's map anchor.
    pub latitude: f64,
    pub longitude: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    North,
    Northeast,
    CenterWest,
    Southeast,
    South,
}

impl Region {
    /// Relative online-shopping propensity per inhabitant. E-commerce in
    /// Brazil is concentrated in the Southeast and South (Olist's orders are
    /// ~70% Southeast), so population alone under-weights them.
    pub fn ecommerce_weight(self) -> f64 {
        match self {
            Region::Southeast => 1.35,
            Region::South => 1.15,
            Region::CenterWest => 0.95,
            Region::Northeast => 0.6,
            Region::North => 0.5,
        }
    }
}

/// A city with its state, coordinates and population (thousands).
#[derive(Debug, Clone, Copy)]
pub struct City {
    pub name: &'static str,
    pub uf: &'static str,
    pub latitude: f64,
    pub longitude: f64,
    pub population_k: u32,
}

const fn st(
    uf: &'static str,
    name: &'static str,
    region: Region,
    latitude: f64,
    longitude: f64,
) -> State {
    State {
        uf,
        name,
        region,
        latitude,
        longitude,
    }
}

pub const STATES: [State; 27] = [
    st("AC", "Acre", Region::North, -9.9747, -67.8243),
    st("AL", "Alagoas", Region::Northeast, -9.6498, -35.7089),
    st("AP", "Amapá", Region::North, 0.0349, -51.0694),
    st("AM", "Amazonas", Region::North, -3.1190, -60.0217),
    st("BA", "Bahia", Region::Northeast, -12.9714, -38.5014),
    st("CE", "Ceará", Region::Northeast, -3.7319, -38.5267),
    st(
        "DF",
        "Distrito Federal",
        Region::CenterWest,
        -15.7939,
        -47.8828,
    ),
    st(
        "ES",
        "Espírito Santo",
        Region::Southeast,
        -20.3155,
        -40.3128,
    ),
    st("GO", "Goiás", Region::CenterWest, -16.6869, -49.2648),
    st("MA", "Maranhão", Region::Northeast, -2.5307, -44.3068),
    st("MT", "Mato Grosso", Region::CenterWest, -15.6014, -56.0979),
    st(
        "MS",
        "Mato Grosso do Sul",
        Region::CenterWest,
        -20.4697,
        -54.6201,
    ),
    st("MG", "Minas Gerais", Region::Southeast, -19.9167, -43.9345),
    st("PA", "Pará", Region::North, -1.4558, -48.4902),
    st("PB", "Paraíba", Region::Northeast, -7.1195, -34.8450),
    st("PR", "Paraná", Region::South, -25.4284, -49.2733),
    st("PE", "Pernambuco", Region::Northeast, -8.0476, -34.8770),
    st("PI", "Piauí", Region::Northeast, -5.0920, -42.8038),
    st(
        "RJ",
        "Rio de Janeiro",
        Region::Southeast,
        -22.9068,
        -43.1729,
    ),
    st(
        "RN",
        "Rio Grande do Norte",
        Region::Northeast,
        -5.7945,
        -35.2110,
    ),
    st("RS", "Rio Grande do Sul", Region::South, -30.0346, -51.2177),
    st("RO", "Rondônia", Region::North, -8.7612, -63.9004),
    st("RR", "Roraima", Region::North, 2.8235, -60.6758),
    st("SC", "Santa Catarina", Region::South, -27.5954, -48.5480),
    st("SP", "São Paulo", Region::Southeast, -23.5505, -46.6333),
    st("SE", "Sergipe", Region::Northeast, -10.9472, -37.0731),
    st("TO", "Tocantins", Region::North, -10.1840, -48.3336),
];

const fn c(
    name: &'static str,
    uf: &'static str,
    latitude: f64,
    longitude: f64,
    population_k: u32,
) -> City {
    City {
        name,
        uf,
        latitude,
        longitude,
        population_k,
    }
}

/// The capitals of all 27 units and the other large cities.
pub const CITIES: [City; 82] = [
    // Southeast
    c("São Paulo", "SP", -23.5505, -46.6333, 11451),
    c("Guarulhos", "SP", -23.4538, -46.5333, 1291),
    c("Campinas", "SP", -22.9099, -47.0626, 1139),
    c("São Bernardo do Campo", "SP", -23.6914, -46.5646, 811),
    c("Santo André", "SP", -23.6639, -46.5383, 748),
    c("Osasco", "SP", -23.5325, -46.7917, 728),
    c("Sorocaba", "SP", -23.5015, -47.4526, 723),
    c("Ribeirão Preto", "SP", -21.1704, -47.8103, 698),
    c("São José dos Campos", "SP", -23.1896, -45.8841, 697),
    c("São José do Rio Preto", "SP", -20.8113, -49.3758, 480),
    c("Santos", "SP", -23.9608, -46.3336, 418),
    c("Bauru", "SP", -22.3246, -49.0871, 379),
    c("Rio de Janeiro", "RJ", -22.9068, -43.1729, 6211),
    c("São Gonçalo", "RJ", -22.8269, -43.0539, 896),
    c("Duque de Caxias", "RJ", -22.7856, -43.3117, 808),
    c("Nova Iguaçu", "RJ", -22.7592, -43.4511, 785),
    c("Niterói", "RJ", -22.8832, -43.1034, 482),
    c("Campos dos Goytacazes", "RJ", -21.7523, -41.3304, 483),
    c("Belo Horizonte", "MG", -19.9167, -43.9345, 2316),
    c("Uberlândia", "MG", -18.9186, -48.2772, 713),
    c("Contagem", "MG", -19.9321, -44.0539, 621),
    c("Juiz de Fora", "MG", -21.7642, -43.3496, 540),
    c("Betim", "MG", -19.9678, -44.1983, 411),
    c("Montes Claros", "MG", -16.7350, -43.8617, 414),
    c("Vitória", "ES", -20.3155, -40.3128, 322),
    c("Serra", "ES", -20.1211, -40.3074, 520),
    c("Vila Velha", "ES", -20.3297, -40.2925, 467),
    c("Cariacica", "ES", -20.2632, -40.4165, 353),
    // South
    c("Curitiba", "PR", -25.4284, -49.2733, 1773),
    c("Londrina", "PR", -23.3045, -51.1696, 555),
    c("Maringá", "PR", -23.4210, -51.9331, 409),
    c("Ponta Grossa", "PR", -25.0945, -50.1633, 358),
    c("Porto Alegre", "RS", -30.0346, -51.2177, 1332),
    c("Caxias do Sul", "RS", -29.1678, -51.1794, 463),
    c("Canoas", "RS", -29.9178, -51.1839, 347),
    c("Pelotas", "RS", -31.7654, -52.3376, 325),
    c("Florianópolis", "SC", -27.5954, -48.5480, 537),
    c("Joinville", "SC", -26.3045, -48.8487, 616),
    c("Blumenau", "SC", -26.9194, -49.0661, 361),
    // Center-West
    c("Brasília", "DF", -15.7939, -47.8828, 2817),
    c("Goiânia", "GO", -16.6869, -49.2648, 1437),
    c("Aparecida de Goiânia", "GO", -16.8198, -49.2469, 527),
    c("Anápolis", "GO", -16.3281, -48.9530, 398),
    c("Campo Grande", "MS", -20.4697, -54.6201, 898),
    c("Dourados", "MS", -22.2233, -54.8083, 243),
    c("Cuiabá", "MT", -15.6014, -56.0979, 650),
    c("Várzea Grande", "MT", -15.6458, -56.1325, 300),
    c("Rondonópolis", "MT", -16.4673, -54.6372, 244),
    // Northeast
    c("Salvador", "BA", -12.9714, -38.5014, 2418),
    c("Feira de Santana", "BA", -12.2664, -38.9663, 616),
    c("Vitória da Conquista", "BA", -14.8615, -40.8442, 370),
    c("Fortaleza", "CE", -3.7319, -38.5267, 2428),
    c("Caucaia", "CE", -3.7361, -38.6531, 355),
    c("Juazeiro do Norte", "CE", -7.2131, -39.3153, 287),
    c("Recife", "PE", -8.0476, -34.8770, 1488),
    c("Jaboatão dos Guararapes", "PE", -8.1130, -35.0149, 644),
    c("Olinda", "PE", -8.0089, -34.8553, 350),
    c("Caruaru", "PE", -8.2760, -35.9819, 378),
    c("São Luís", "MA", -2.5307, -44.3068, 1037),
    c("Imperatriz", "MA", -5.5264, -47.4917, 273),
    c("Maceió", "AL", -9.6498, -35.7089, 958),
    c("Arapiraca", "AL", -9.7525, -36.6611, 234),
    c("Teresina", "PI", -5.0920, -42.8038, 867),
    c("Parnaíba", "PI", -2.9055, -41.7767, 162),
    c("Natal", "RN", -5.7945, -35.2110, 752),
    c("Mossoró", "RN", -5.1878, -37.3442, 264),
    c("João Pessoa", "PB", -7.1195, -34.8450, 833),
    c("Campina Grande", "PB", -7.2307, -35.8817, 419),
    c("Aracaju", "SE", -10.9472, -37.0731, 602),
    c("Nossa Senhora do Socorro", "SE", -10.8550, -37.1260, 192),
    // North
    c("Manaus", "AM", -3.1190, -60.0217, 2063),
    c("Parintins", "AM", -2.6283, -56.7358, 97),
    c("Belém", "PA", -1.4558, -48.4902, 1303),
    c("Ananindeua", "PA", -1.3656, -48.3722, 479),
    c("Santarém", "PA", -2.4430, -54.7081, 331),
    c("Porto Velho", "RO", -8.7612, -63.9004, 460),
    c("Ji-Paraná", "RO", -10.8853, -61.9517, 125),
    c("Macapá", "AP", 0.0349, -51.0694, 442),
    c("Rio Branco", "AC", -9.9747, -67.8243, 364),
    c("Boa Vista", "RR", 2.8235, -60.6758, 413),
    c("Palmas", "TO", -10.1840, -48.3336, 302),
    c("Araguaína", "TO", -7.1911, -48.2072, 171),
];

/// The state record of a UF code.
pub fn state(uf: &str) -> Option<&'static State> {
    STATES.iter().find(|s| s.uf == uf)
}

/// Sampling weight of each city in [`CITIES`]: population × the region's
/// e-commerce propensity.
pub fn city_weights() -> Vec<f64> {
    CITIES
        .iter()
        .map(|c| {
            let region = state(c.uf)
                .map(|s| s.region.ecommerce_weight())
                .unwrap_or(1.0);
            f64::from(c.population_k) * region
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_has_a_city_and_every_city_a_state() {
        for s in STATES {
            assert!(CITIES.iter().any(|c| c.uf == s.uf), "no city in {}", s.uf);
        }
        for c in CITIES {
            assert!(state(c.uf).is_some(), "{} has unknown UF {}", c.name, c.uf);
            // Brazil's bounding box.
            assert!((-34.0..=5.5).contains(&c.latitude), "{}", c.name);
            assert!((-74.0..=-34.5).contains(&c.longitude), "{}", c.name);
        }
    }
}
