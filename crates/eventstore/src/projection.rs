//! Read models built from every stream, and rebuilt from scratch by replaying them.

use crate::{Commit, EventStore, StoreError};

/// A read model: folds commits, in recording order, into whatever it answers queries with.
pub trait Projection {
    fn apply(&mut self, commit: &Commit);
}

/// Replays every commit of `store` into `projection`, `page` commits per query, calling
/// `progress` with the number applied so far after each page. Returns the total.
pub async fn rebuild<S, P>(
    store: &S,
    projection: &mut P,
    page: usize,
    mut progress: impl FnMut(u64),
) -> Result<u64, StoreError>
where
    S: EventStore,
    P: Projection,
{
    let mut applied = 0;
    let mut last: Option<Commit> = None;
    loop {
        let commits = store.replay(last.as_ref(), page.max(1)).await?;
        let Some(tail) = commits.last().cloned() else {
            return Ok(applied);
        };
        for commit in &commits {
            projection.apply(commit);
        }
        applied += commits.len() as u64;
        progress(applied);
        last = Some(tail);
    }
}

/// Feeds every commit of `store` into `projection` once, in no particular order (not even
/// within a stream), reading the store in one pass ([`EventStore::scan`]): for one-time imports
/// whose projection does not depend on order. Returns how many commits it applied.
pub async fn scan<S, P>(store: &S, projection: &mut P) -> Result<u64, StoreError>
where
    S: EventStore,
    P: Projection + Send,
{
    store.scan(&mut |commit| projection.apply(&commit)).await
}
