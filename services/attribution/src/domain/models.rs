//! Attribution models: how a conversion's credit is shared among its touchpoints.
//!
//! Credit is expressed as integer weights in parts per million that always sum to exactly
//! 1 000 000, and money is split by those weights in integer minor units that always sum to
//! exactly the amount: no rounding ever creates or loses a cent, and the same input always gives
//! the same output, on every machine.
//!
//! Both are *apportionments* solved by the largest-remainder method: every share gets the floor
//! of its exact quota, and the units left over go one each to the largest remainders. Ties go to
//! the later touchpoint, which keeps the recency bias of the models (time decay stays
//! non-decreasing by time) and makes the result deterministic. The arithmetic is exact, in
//! `u128`; only time decay computes its raw shares with a float (`2^(-age/half-life)`), before
//! any rounding, and never touches money with it.

use alpes_contracts::Timestamp;
use alpes_contracts::events::attribution::AttributionModel;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// The whole credit of a conversion, in parts per million.
pub const FULL_CREDIT_PPM: u32 = 1_000_000;

/// Time decay halves a touchpoint's credit for every this much time before the purchase.
pub const TIME_DECAY_HALF_LIFE: TimeDelta = TimeDelta::days(7);

/// How a conversion is credited to its touchpoints, as attribution stores it (the contract's
/// `AttributionModel` converts both ways).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Model {
    /// All credit to the last touchpoint.
    LastTouch,
    /// All credit to the first touchpoint.
    FirstTouch,
    /// Equal credit to every touchpoint.
    Linear,
    /// 40 % to the first, 40 % to the last, 20 % shared by those between.
    PositionBased,
    /// Credit halving for every [`TIME_DECAY_HALF_LIFE`] before the purchase.
    TimeDecay,
}

impl From<AttributionModel> for Model {
    fn from(model: AttributionModel) -> Self {
        match model {
            AttributionModel::LastTouch => Self::LastTouch,
            AttributionModel::FirstTouch => Self::FirstTouch,
            AttributionModel::Linear => Self::Linear,
            AttributionModel::PositionBased => Self::PositionBased,
            AttributionModel::TimeDecay => Self::TimeDecay,
        }
    }
}

impl From<Model> for AttributionModel {
    fn from(model: Model) -> Self {
        match model {
            Model::LastTouch => Self::LastTouch,
            Model::FirstTouch => Self::FirstTouch,
            Model::Linear => Self::Linear,
            Model::PositionBased => Self::PositionBased,
            Model::TimeDecay => Self::TimeDecay,
        }
    }
}

/// Weights of touchpoints in parts per million, summing to exactly [`FULL_CREDIT_PPM`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights(Vec<u32>);

impl Weights {
    /// The weights `model` gives touchpoints at `times` (oldest first) of a purchase at
    /// `purchase_at`, one per touchpoint, in the same order; `None` when there are none.
    ///
    /// Touchpoints at the same time keep their given order; callers sort by time and then by
    /// a stable key (the interaction id) so that the order is itself deterministic.
    pub fn for_model(model: Model, times: &[Timestamp], purchase_at: Timestamp) -> Option<Self> {
        let n = times.len();
        if n == 0 {
            return None;
        }
        let raw: Vec<u128> = match model {
            Model::LastTouch => (0..n).map(|i| u128::from(i == n - 1)).collect(),
            Model::FirstTouch => (0..n).map(|i| u128::from(i == 0)).collect(),
            Model::Linear => vec![1; n],
            Model::PositionBased => position_based(n),
            Model::TimeDecay => time_decay(times, purchase_at),
        };
        let ppm = apportion(u128::from(FULL_CREDIT_PPM), &raw);
        Some(Self(
            ppm.into_iter()
                .map(|w| u32::try_from(w).expect("a share of 1_000_000 fits u32"))
                .collect(),
        ))
    }

    /// The weights, in the order of the touchpoints they were computed for.
    pub fn ppm(&self) -> &[u32] {
        &self.0
    }

    /// Splits `amount_minor` by the weights: one part per weight, the parts summing to exactly
    /// `amount_minor`. Any `i64` is accepted (the domain only passes amounts ≥ 0); a negative
    /// amount is split as its magnitude and every part negated.
    pub fn split(&self, amount_minor: i64) -> Vec<i64> {
        let raw: Vec<u128> = self.0.iter().map(|w| u128::from(*w)).collect();
        apportion(u128::from(amount_minor.unsigned_abs()), &raw)
            .into_iter()
            .map(|part| {
                // Each part is at most |amount_minor| ≤ 2^63, so it fits once signed.
                let part = i128::try_from(part).expect("a part fits i128");
                let signed = if amount_minor < 0 { -part } else { part };
                i64::try_from(signed).expect("a part is at most the amount")
            })
            .collect()
    }
}

/// 40 % to the first, 40 % to the last, 20 % shared by the ones in between. With two
/// touchpoints there is no middle and they share equally; one touchpoint takes everything.
/// As integer ratios: first and last `2(n-2)` each, every middle one `1`, out of `5(n-2)`.
fn position_based(n: usize) -> Vec<u128> {
    if n <= 2 {
        return vec![1; n];
    }
    let ends = 2 * (n as u128 - 2);
    (0..n)
        .map(|i| if i == 0 || i == n - 1 { ends } else { 1 })
        .collect()
}

/// `2^(-age / half-life)` for each touchpoint, as a 52-bit fixed-point integer.
///
/// Ages are measured from the purchase, but shares only depend on the ratios between them, so
/// each is taken relative to the youngest touchpoint: the youngest weighs exactly `2^52`, and a
/// very old touchpoint rounds to 0 instead of every weight underflowing together.
fn time_decay(times: &[Timestamp], purchase_at: Timestamp) -> Vec<u128> {
    const ONE: f64 = (1u64 << 52) as f64;
    let age_seconds = |t: &Timestamp| (purchase_at - *t).num_milliseconds() as f64 / 1000.0;
    let youngest = times.iter().map(age_seconds).fold(f64::INFINITY, f64::min);
    let half_life = TIME_DECAY_HALF_LIFE.num_seconds() as f64;
    times
        .iter()
        .map(|t| {
            let half_lives = (age_seconds(t) - youngest) / half_life;
            // In [0, 2^52]: the cast saturates and never wraps.
            ((-half_lives).exp2() * ONE) as u128
        })
        .collect()
}

/// Splits `total` into parts proportional to `raw` by the largest-remainder method: the parts
/// sum to exactly `total`, and equal remainders favour the later index.
///
/// If every raw share is 0 the proportions are undefined and the total goes to the last part.
/// `total * max(raw)` must fit `u128`: callers pass totals below 2^64 and shares below 2^53.
fn apportion(total: u128, raw: &[u128]) -> Vec<u128> {
    let sum: u128 = raw.iter().sum();
    if sum == 0 {
        let mut parts = vec![0; raw.len()];
        if let Some(last) = parts.last_mut() {
            *last = total;
        }
        return parts;
    }
    let mut parts: Vec<u128> = raw.iter().map(|r| total * r / sum).collect();
    let mut by_remainder: Vec<(u128, usize)> = raw
        .iter()
        .enumerate()
        .map(|(i, r)| (total * r % sum, i))
        .collect();
    by_remainder.sort_unstable_by(|a, b| b.cmp(a));
    let left = total - parts.iter().sum::<u128>();
    for (_, i) in by_remainder.into_iter().take(left as usize) {
        parts[i] += 1;
    }
    parts
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;

    const MODELS: [Model; 5] = [
        Model::LastTouch,
        Model::FirstTouch,
        Model::Linear,
        Model::PositionBased,
        Model::TimeDecay,
    ];

    fn purchase() -> Timestamp {
        Utc.with_ymd_and_hms(2025, 3, 30, 12, 0, 0).unwrap()
    }

    fn days_before(days: &[i64]) -> Vec<Timestamp> {
        days.iter()
            .map(|d| purchase() - TimeDelta::days(*d))
            .collect()
    }

    fn weights(model: Model, days: &[i64]) -> Vec<u32> {
        Weights::for_model(model, &days_before(days), purchase())
            .unwrap()
            .ppm()
            .to_vec()
    }

    #[test]
    fn last_touch_gives_everything_to_the_last_touchpoint() {
        assert_eq!(weights(Model::LastTouch, &[9, 5, 1]), [0, 0, 1_000_000]);
    }

    #[test]
    fn first_touch_gives_everything_to_the_first_touchpoint() {
        assert_eq!(weights(Model::FirstTouch, &[9, 5, 1]), [1_000_000, 0, 0]);
    }

    #[test]
    fn linear_shares_equally_and_the_odd_unit_goes_to_the_latest() {
        assert_eq!(
            weights(Model::Linear, &[9, 5, 1]),
            [333_333, 333_333, 333_334]
        );
    }

    #[test]
    fn position_based_gives_40_20_40() {
        assert_eq!(
            weights(Model::PositionBased, &[9, 7, 5, 1]),
            [400_000, 100_000, 100_000, 400_000]
        );
    }

    #[test]
    fn position_based_with_one_touchpoint_gives_it_everything() {
        assert_eq!(weights(Model::PositionBased, &[3]), [1_000_000]);
    }

    #[test]
    fn position_based_with_two_touchpoints_shares_equally() {
        assert_eq!(weights(Model::PositionBased, &[3, 1]), [500_000, 500_000]);
    }

    #[test]
    fn time_decay_halves_credit_every_seven_days() {
        // Raw shares 1/4, 1/2, 1 out of 7/4.
        assert_eq!(
            weights(Model::TimeDecay, &[14, 7, 0]),
            [142_857, 285_714, 571_429]
        );
    }

    #[test]
    fn no_touchpoint_has_no_weights() {
        assert_eq!(Weights::for_model(Model::Linear, &[], purchase()), None);
    }

    #[test]
    fn an_amount_is_split_without_losing_a_cent() {
        let thirds =
            Weights::for_model(Model::Linear, &days_before(&[3, 2, 1]), purchase()).unwrap();
        assert_eq!(thirds.split(100), [33, 33, 34]);
        assert_eq!(thirds.split(0), [0, 0, 0]);
        assert_eq!(thirds.split(-100), [-33, -33, -34]);
    }

    #[test]
    fn the_extremes_of_i64_are_split_exactly() {
        let w =
            Weights::for_model(Model::TimeDecay, &days_before(&[20, 3, 1]), purchase()).unwrap();
        for amount in [i64::MAX, i64::MIN] {
            assert_eq!(
                w.split(amount).into_iter().map(i128::from).sum::<i128>(),
                i128::from(amount)
            );
        }
    }

    fn model() -> impl Strategy<Value = Model> {
        prop::sample::select(MODELS.to_vec())
    }

    /// 1..50 touchpoint times anywhere within ±1000 years of the purchase, oldest first.
    fn sorted_times() -> impl Strategy<Value = Vec<Timestamp>> {
        let range = 1000 * 365 * 86_400_i64;
        prop::collection::vec(-range..=range, 1..50).prop_map(|mut offsets| {
            offsets.sort_unstable();
            offsets
                .into_iter()
                .map(|s| purchase() + TimeDelta::seconds(s))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn weights_always_sum_to_one_million(model in model(), times in sorted_times()) {
            let w = Weights::for_model(model, &times, purchase()).unwrap();
            prop_assert_eq!(w.ppm().len(), times.len());
            prop_assert_eq!(w.ppm().iter().sum::<u32>(), FULL_CREDIT_PPM);
        }

        #[test]
        fn a_split_sums_to_the_amount(
            model in model(),
            times in sorted_times(),
            amount in any::<i64>(),
        ) {
            let parts = Weights::for_model(model, &times, purchase()).unwrap().split(amount);
            prop_assert_eq!(parts.len(), times.len());
            prop_assert_eq!(parts.iter().map(|p| i128::from(*p)).sum::<i128>(), i128::from(amount));
        }

        #[test]
        fn any_apportionment_is_exact(
            total in any::<u64>(),
            raw in prop::collection::vec(0..=u128::from(FULL_CREDIT_PPM), 1..50),
        ) {
            let parts = apportion(u128::from(total), &raw);
            prop_assert_eq!(parts.iter().sum::<u128>(), u128::from(total));
        }

        #[test]
        fn time_decay_never_favours_an_older_touchpoint(times in sorted_times()) {
            let w = Weights::for_model(Model::TimeDecay, &times, purchase()).unwrap();
            prop_assert!(w.ppm().windows(2).all(|p| p[0] <= p[1]), "{:?}", w.ppm());
        }

        #[test]
        fn position_based_ends_weigh_at_least_the_middle(times in sorted_times()) {
            let w = Weights::for_model(Model::PositionBased, &times, purchase()).unwrap();
            let ppm = w.ppm();
            let (first, last) = (ppm[0], ppm[ppm.len() - 1]);
            let middle = &ppm[1..ppm.len().saturating_sub(1).max(1)];
            prop_assert!(middle.iter().all(|m| *m <= first && *m <= last), "{:?}", ppm);
        }
    }
}
