//! Progress on standard error while a run goes on.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress on standard error: visitors driven and sagas settled; hidden when it is not a
/// terminal, so logs and pipes stay clean.
pub(crate) struct Bars {
    _multi: MultiProgress,
    pub(crate) visitors: ProgressBar,
    pub(crate) sagas: ProgressBar,
}

impl Bars {
    pub(crate) fn new(visitors: u32, sagas: usize) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:40}] {pos:>6}/{len:<6} {elapsed:>4} {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> ");
        let bar = |len: u64, prefix: &'static str| {
            let bar = multi.add(ProgressBar::new(len));
            bar.set_style(style.clone());
            bar.set_prefix(prefix);
            bar
        };
        Self {
            visitors: bar(u64::from(visitors), "visitors"),
            sagas: bar(sagas as u64, "sagas"),
            _multi: multi,
        }
    }

    pub(crate) fn finish(&self) {
        self.visitors.finish();
        self.sagas.finish();
    }
}
