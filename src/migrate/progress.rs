//! Progress reporting: an `indicatif` bar (tags and bytes) on a terminal, structured `tracing` lines
//! otherwise. Reports only; never decides anything.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Cheap to clone; all clones report to the same bars.
#[derive(Clone, Default)]
pub struct Progress {
    bars: Option<Arc<Bars>>,
}

struct Bars {
    _multi: MultiProgress,
    tags: ProgressBar,
    bytes: ProgressBar,
}

impl Progress {
    /// Bars when `interactive` (stderr is a terminal), log lines otherwise.
    pub fn new(interactive: bool) -> Self {
        if !interactive {
            return Progress { bars: None };
        }
        let multi = MultiProgress::new();
        let tags = multi.add(ProgressBar::new(0));
        tags.set_style(
            ProgressStyle::with_template("{spinner} tags {pos}/{len} [{bar:30}] {elapsed} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let bytes = multi.add(ProgressBar::no_length());
        bytes.set_style(
            ProgressStyle::with_template("  copied {bytes} ({bytes_per_sec})")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        tags.enable_steady_tick(Duration::from_millis(200));
        Progress {
            bars: Some(Arc::new(Bars {
                _multi: multi,
                tags,
                bytes,
            })),
        }
    }

    /// More tags to do.
    pub fn add_tags(&self, count: u64) {
        if let Some(bars) = &self.bars {
            bars.tags.inc_length(count);
        }
    }

    /// One tag finished (`outcome`: copied, skipped, failed).
    pub fn tag_done(&self, repo: &str, tag: &str, outcome: &str) {
        match &self.bars {
            Some(bars) => {
                bars.tags.set_message(format!("{repo}:{tag} {outcome}"));
                bars.tags.inc(1);
            }
            None => tracing::info!(repo, tag, outcome, "tag done"),
        }
    }

    /// Blob bytes streamed.
    pub fn add_bytes(&self, count: u64) {
        if let Some(bars) = &self.bars {
            bars.bytes.inc(count);
        }
    }

    /// Removes the bars.
    pub fn finish(&self) {
        if let Some(bars) = &self.bars {
            bars.tags.finish_and_clear();
            bars.bytes.finish_and_clear();
        }
    }
}
