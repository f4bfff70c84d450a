//! What the run saw, saga by saga: when tracking answered its purchase, and when its outcome
//! was heard on the bus.
//!
//! The two arrive from different places (a driver task, a subscription) and in either order:
//! a fast platform can announce a commission before the purchase's answer has been read. So an
//! outcome for a saga not started yet is kept aside and matched when the saga shows up;
//! outcomes of sagas this run never starts (other traffic on the same topics) stay there,
//! unused. Only a saga's first outcome counts.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::observe::{Ending, Heard};

/// A saga of the run whose outcome was heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub ending: Ending,
    /// From the purchase's answer to the outcome's arrival.
    pub latency: Duration,
    pub at: Instant,
}

/// The run's sagas so far.
#[derive(Debug, Default)]
pub struct Tally {
    /// Started, outcome not heard yet: when the purchase was answered.
    open: HashMap<String, Instant>,
    /// Outcomes of sagas not started (yet).
    early: HashMap<String, (Ending, Instant)>,
    pub finished: Vec<Finished>,
    /// Reported as fraud, compensation's end not heard yet: when the report was answered.
    reported: HashMap<String, Instant>,
    /// Compensations' ends heard before their fraud report's answer was read.
    discarded_early: HashMap<String, Instant>,
    /// Fraud report answered → interactions discarded, per compensated saga.
    pub compensations: Vec<Duration>,
    pub started: usize,
    /// Visitors who failed before their saga started.
    pub failed: usize,
    pub fraud_reported: usize,
    pub errors: Vec<String>,
}

impl Tally {
    /// Tracking answered a purchase with `saga_id` at `purchased`; whether that finished it
    /// (its outcome was already heard).
    pub fn started(&mut self, saga_id: String, purchased: Instant) -> bool {
        self.started += 1;
        match self.early.remove(&saga_id) {
            Some((ending, at)) => {
                self.finish(ending, purchased, at);
                true
            }
            None => {
                self.open.insert(saga_id, purchased);
                false
            }
        }
    }

    /// Marketing accepted the fraud report on `saga_id` at `reported`.
    pub fn fraud_reported(&mut self, saga_id: String, reported: Instant) {
        self.fraud_reported += 1;
        match self.discarded_early.remove(&saga_id) {
            Some(at) => self
                .compensations
                .push(at.saturating_duration_since(reported)),
            None => {
                self.reported.insert(saga_id, reported);
            }
        }
    }

    /// An outcome arrived; whether it finished one of the run's sagas (the end of a
    /// compensation finishes no saga: it was counted when its forward path ended).
    pub fn heard(&mut self, heard: Heard) -> bool {
        if heard.ending == Ending::Discarded {
            match self.reported.remove(&heard.saga_id) {
                Some(reported) => self
                    .compensations
                    .push(heard.at.saturating_duration_since(reported)),
                None => {
                    self.discarded_early.insert(heard.saga_id, heard.at);
                }
            }
            return false;
        }
        match self.open.remove(&heard.saga_id) {
            Some(purchased) => {
                self.finish(heard.ending, purchased, heard.at);
                true
            }
            None => {
                self.early
                    .entry(heard.saga_id)
                    .or_insert((heard.ending, heard.at));
                false
            }
        }
    }

    /// A visitor failed before its saga started.
    pub fn failed(&mut self, error: String) {
        self.failed += 1;
        self.errors.push(error);
    }

    /// Sagas started whose outcome has not been heard.
    pub fn open(&self) -> impl Iterator<Item = &String> {
        self.open.keys()
    }

    /// Sagas reported as fraud whose compensation has not been heard to end.
    pub fn uncompensated(&self) -> impl Iterator<Item = &String> {
        self.reported.keys()
    }

    /// How many sagas are still open, forward or compensating.
    pub fn open_count(&self) -> usize {
        self.open.len() + self.reported.len()
    }

    /// When the last outcome arrived.
    pub fn last_finished(&self) -> Option<Instant> {
        self.finished.iter().map(|f| f.at).max()
    }

    fn finish(&mut self, ending: Ending, purchased: Instant, at: Instant) {
        self.finished.push(Finished {
            ending,
            latency: at.saturating_duration_since(purchased),
            at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heard(saga: &str, ending: Ending, at: Instant) -> Heard {
        Heard {
            saga_id: saga.into(),
            ending,
            at,
        }
    }

    #[test]
    fn an_outcome_finishes_its_saga_whichever_arrives_first() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut tally = Tally::default();
        assert!(!tally.started("a".into(), t));
        assert!(tally.heard(heard("a", Ending::Reserved, t + ms(40))));
        // The outcome of b is heard before its purchase's answer is read.
        assert!(!tally.heard(heard("b", Ending::Rejected, t + ms(50))));
        assert!(tally.started("b".into(), t + ms(60)));
        assert!(!tally.started("c".into(), t + ms(70)));
        assert_eq!(tally.started, 3);
        assert_eq!(tally.open().collect::<Vec<_>>(), ["c"]);
        let finished: Vec<_> = tally
            .finished
            .iter()
            .map(|f| (f.ending, f.latency))
            .collect();
        assert_eq!(
            finished,
            [
                (Ending::Reserved, ms(40)),
                (Ending::Rejected, Duration::ZERO),
            ]
        );
        assert_eq!(tally.last_finished(), Some(t + ms(50)));
    }

    #[test]
    fn a_compensation_is_timed_from_its_report_whichever_is_read_first() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut tally = Tally::default();
        assert!(!tally.started("a".into(), t));
        assert!(tally.heard(heard("a", Ending::Reserved, t + ms(30))));
        tally.fraud_reported("a".into(), t + ms(40));
        assert_eq!(
            tally.open_count(),
            1,
            "a compensation under way keeps the run going"
        );
        assert!(!tally.heard(heard("a", Ending::Discarded, t + ms(100))));
        // b's compensation ends before the answer to its fraud report is read.
        assert!(!tally.started("b".into(), t));
        assert!(tally.heard(heard("b", Ending::Reverted, t + ms(10))));
        assert!(!tally.heard(heard("b", Ending::Discarded, t + ms(50))));
        tally.fraud_reported("b".into(), t + ms(60));
        tally.fraud_reported("c".into(), t + ms(70));
        assert_eq!(tally.compensations, [ms(60), Duration::ZERO]);
        assert_eq!(tally.uncompensated().collect::<Vec<_>>(), ["c"]);
        assert_eq!((tally.fraud_reported, tally.open_count()), (3, 1));
        assert_eq!(
            tally.finished.len(),
            2,
            "compensations finish no saga twice"
        );
    }

    #[test]
    fn only_the_first_outcome_counts_and_strangers_are_ignored() {
        let t = Instant::now();
        let mut tally = Tally::default();
        tally.started("a".into(), t);
        assert!(tally.heard(heard("a", Ending::Reverted, t)));
        assert!(!tally.heard(heard("a", Ending::Reserved, t)));
        assert!(!tally.heard(heard("someone-else", Ending::Reserved, t)));
        assert_eq!(tally.finished.len(), 1);
        assert_eq!(tally.open_count(), 0);
    }
}
