//! Product categories of the generated shop: names as Brazilian marketplaces
//! write them (Olist's snake_case Portuguese), each with its own log-normal
//! price distribution, popularity and basket habits.

/// One product category.
#[derive(Debug, Clone, Copy)]
pub struct Category {
    pub name: &'static str,
    /// Median list price in R$ (the log-normal's `exp(mu)`).
    pub median_price: f64,
    /// Log-normal sigma: spread of prices within the category.
    pub price_sigma: f64,
    /// Share of order lines in an ordinary week.
    pub popularity: f64,
    /// Mean of the extra units per line (quantity = 1 + Poisson(this)).
    pub extra_units: f64,
    /// Demand multiplier per seasonal event (see [`Event`]).
    pub black_friday: f64,
    pub christmas: f64,
    pub mothers_day: f64,
    pub childrens_day: f64,
}

const fn cat(
    name: &'static str,
    median_price: f64,
    price_sigma: f64,
    popularity: f64,
    extra_units: f64,
    boosts: [f64; 4],
) -> Category {
    Category {
        name,
        median_price,
        price_sigma,
        popularity,
        extra_units,
        black_friday: boosts[0],
        christmas: boosts[1],
        mothers_day: boosts[2],
        childrens_day: boosts[3],
    }
}

/// The twelve categories. Boosts: [Black Friday, Christmas, Mother's Day, Children's Day].
pub const CATEGORIES: [Category; 12] = [
    cat("eletronicos", 420.0, 0.85, 0.09, 0.05, [2.2, 1.4, 1.0, 1.0]),
    cat("informatica", 650.0, 0.80, 0.07, 0.10, [2.0, 1.2, 0.9, 1.0]),
    cat("telefonia", 1100.0, 0.55, 0.07, 0.02, [2.4, 1.5, 1.3, 1.0]),
    cat(
        "eletrodomesticos",
        720.0,
        0.75,
        0.07,
        0.02,
        [2.0, 1.2, 1.5, 1.0],
    ),
    cat(
        "moveis_decoracao",
        190.0,
        0.90,
        0.10,
        0.25,
        [1.2, 1.0, 1.0, 1.0],
    ),
    cat(
        "cama_mesa_banho",
        95.0,
        0.70,
        0.11,
        0.35,
        [1.1, 1.1, 1.3, 1.0],
    ),
    cat("beleza_saude", 55.0, 0.70, 0.13, 0.45, [1.2, 1.3, 2.2, 1.0]),
    cat(
        "esporte_lazer",
        130.0,
        0.90,
        0.09,
        0.15,
        [1.3, 1.3, 1.0, 1.2],
    ),
    cat("brinquedos", 85.0, 0.80, 0.07, 0.20, [1.3, 2.6, 1.0, 3.0]),
    cat(
        "moda_acessorios",
        75.0,
        0.70,
        0.09,
        0.30,
        [1.4, 1.4, 1.9, 1.1],
    ),
    cat(
        "livros_papelaria",
        42.0,
        0.60,
        0.05,
        0.40,
        [1.1, 1.2, 1.0, 1.1],
    ),
    cat(
        "alimentos_bebidas",
        28.0,
        0.60,
        0.06,
        1.20,
        [1.0, 1.5, 1.0, 1.0],
    ),
];
