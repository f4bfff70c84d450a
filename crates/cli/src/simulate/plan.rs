//! What a simulation will do, decided up front from its seed: which visitors buy, for how much,
//! through which partner, and which sales are reported as fraud.
//!
//! The generator is SplitMix64, written out here rather than taken from a crate, so that a seed
//! means the same plan on every version of the CLI, whatever a dependency does to its streams.

/// A small, fast, seedable generator (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift: unbiased enough for choosing among a few thousand.
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The knobs of a plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanConfig {
    pub visitors: u32,
    /// Probability that a visitor buys, 0..=1.
    pub purchase_rate: f64,
    /// How many of the sales are reported as fraud.
    pub frauds: FraudShare,
    /// How many partners the traffic comes through.
    pub partners: u32,
    pub seed: u64,
}

/// How many sales a plan reports as fraud.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FraudShare {
    /// A fraction of the sales, 0..=1, rounded to whole sales.
    Rate(f64),
    /// Exactly this many sales (all of them when there are fewer).
    Count(u32),
}

impl FraudShare {
    /// How many of `sales` sales this share is.
    pub fn of(self, sales: usize) -> usize {
        match self {
            Self::Rate(rate) => (rate * sales as f64).round() as usize,
            Self::Count(count) => count as usize,
        }
        .min(sales)
    }
}

/// One visitor's script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorPlan {
    /// 0-based position, also the visitor's name within the run.
    pub index: u32,
    /// The partner whose link the visitor follows, e.g. `partner-3`.
    pub partner: String,
    /// Present when the visitor buys.
    pub purchase: Option<PlannedPurchase>,
}

/// A sale the visitor makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedPurchase {
    /// The order's total in minor units, 10.00 to 500.00.
    pub amount_minor: i64,
    /// Whether the sale will be reported as fraud.
    pub fraud: bool,
}

/// Smallest and largest order total, in minor units.
const AMOUNTS: (i64, i64) = (1_000, 50_000);

/// Every visitor's script. Each visitor buys with probability `purchase_rate`; exactly
/// `frauds.of(sales)` of the sales, chosen uniformly, are reported as fraud.
pub fn plan(config: &PlanConfig) -> Vec<VisitorPlan> {
    let mut rng = Rng::new(config.seed);
    let partners = u64::from(config.partners.max(1));
    let mut visitors: Vec<VisitorPlan> = (0..config.visitors)
        .map(|index| {
            let partner = format!("partner-{}", rng.below(partners) + 1);
            let buys = rng.unit() < config.purchase_rate;
            let amount_minor = AMOUNTS.0 + rng.below((AMOUNTS.1 - AMOUNTS.0 + 1) as u64) as i64;
            VisitorPlan {
                index,
                partner,
                purchase: buys.then_some(PlannedPurchase {
                    amount_minor,
                    fraud: false,
                }),
            }
        })
        .collect();
    let mut buyers: Vec<usize> = visitors
        .iter()
        .enumerate()
        .filter(|(_, v)| v.purchase.is_some())
        .map(|(i, _)| i)
        .collect();
    let frauds = config.frauds.of(buyers.len());
    // A partial Fisher–Yates shuffle: the first `frauds` buyers are a uniform sample.
    for i in 0..frauds {
        let j = i + rng.below((buyers.len() - i) as u64) as usize;
        buyers.swap(i, j);
        if let Some(purchase) = visitors[buyers[i]].purchase.as_mut() {
            purchase.fraud = true;
        }
    }
    visitors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(visitors: u32, purchase_rate: f64, fraud_rate: f64, seed: u64) -> PlanConfig {
        PlanConfig {
            visitors,
            purchase_rate,
            frauds: FraudShare::Rate(fraud_rate),
            partners: 5,
            seed,
        }
    }

    fn counts(plan: &[VisitorPlan]) -> (usize, usize) {
        let sales = plan.iter().filter(|v| v.purchase.is_some()).count();
        let frauds = plan
            .iter()
            .filter(|v| v.purchase.is_some_and(|p| p.fraud))
            .count();
        (sales, frauds)
    }

    #[test]
    fn the_same_seed_gives_the_same_plan_and_another_seed_another() {
        let a = plan(&config(200, 0.4, 0.25, 42));
        assert_eq!(a, plan(&config(200, 0.4, 0.25, 42)));
        assert_ne!(a, plan(&config(200, 0.4, 0.25, 43)));
    }

    #[test]
    fn the_generator_is_splitmix64() {
        // Reference values of SplitMix64 seeded with 0.
        let mut rng = Rng::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn the_purchase_rate_is_a_probability_and_the_fraud_rate_an_exact_fraction() {
        let p = plan(&config(10_000, 0.3, 0.1, 7));
        let (sales, frauds) = counts(&p);
        assert!((2_850..=3_150).contains(&sales), "{sales} sales of 10 000");
        assert_eq!(frauds, (sales as f64 * 0.1).round() as usize);
        for v in &p {
            if let Some(purchase) = v.purchase {
                assert!((1_000..=50_000).contains(&purchase.amount_minor));
            }
            let partner: u32 = v.partner.trim_start_matches("partner-").parse().unwrap();
            assert!((1..=5).contains(&partner));
        }
    }

    #[test]
    fn rates_of_zero_and_one_are_all_or_nothing() {
        assert_eq!(counts(&plan(&config(50, 0.0, 1.0, 1))), (0, 0));
        assert_eq!(counts(&plan(&config(50, 1.0, 0.0, 1))), (50, 0));
        assert_eq!(counts(&plan(&config(50, 1.0, 1.0, 1))), (50, 50));
        let half = plan(&config(6, 1.0, 0.5, 9));
        assert_eq!(counts(&half), (6, 3));
    }

    #[test]
    fn a_fraud_count_is_exact_and_capped_at_the_sales() {
        let exact = PlanConfig {
            frauds: FraudShare::Count(4),
            ..config(10, 1.0, 0.0, 3)
        };
        assert_eq!(counts(&plan(&exact)), (10, 4));
        let more = PlanConfig {
            frauds: FraudShare::Count(40),
            ..config(10, 1.0, 0.0, 3)
        };
        assert_eq!(counts(&plan(&more)), (10, 10));
    }
}
