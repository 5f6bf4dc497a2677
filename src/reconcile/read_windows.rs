//! Children a pass is applying and will read from the caches afterwards (its "read window"): a watch
//! event of one of them seen while the window is open tells the owner nothing its own report will
//! not already show. Only bookkeeping; `streams::child_changes` decides, `apply::apply_and_prune`
//! opens and closes windows.
//!
//! Why it is sound: a child's cache takes each event before the trigger filter sees it. So an event
//! the filter sees while the window is open is in the cache before the window closes, and the pass
//! reads the caches only after closing it. Why it matters (issue 17): the creation echoes of a
//! Registry's Deployment, claim and Service arrive while the pass that created them is still
//! applying, and each cost one more reconcile a second later that found nothing new.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::children::ChildId;

/// Open read windows: how many passes have each child in theirs (passes of one owner do not
/// overlap, but nothing breaks if they did).
#[derive(Clone, Default)]
pub struct ReadWindows {
    open: Arc<Mutex<HashMap<ChildId, usize>>>,
}

/// An open read window; dropping it closes it.
pub struct ReadWindow {
    windows: ReadWindows,
    children: Vec<ChildId>,
}

impl ReadWindows {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<ChildId, usize>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Open a window over `children` until the returned guard is dropped.
    pub fn open_for(&self, children: Vec<ChildId>) -> ReadWindow {
        let mut open = self.open();
        for child in &children {
            *open.entry(child.clone()).or_default() += 1;
        }
        ReadWindow {
            windows: self.clone(),
            children,
        }
    }

    /// Whether some pass has `child` in its open window.
    pub fn contains(&self, child: &ChildId) -> bool {
        self.open().contains_key(child)
    }
}

impl Drop for ReadWindow {
    fn drop(&mut self) {
        let mut open = self.windows.open();
        for child in &self.children {
            if let Some(count) = open.get_mut(child) {
                *count -= 1;
                if *count == 0 {
                    open.remove(child);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(name: &str) -> ChildId {
        ("apps/v1/Deployment".into(), Some("ns".into()), name.into())
    }

    #[test]
    fn a_child_is_in_a_window_while_some_pass_holds_one_over_it() {
        let windows = ReadWindows::default();
        assert!(!windows.contains(&child("a")));
        let first = windows.open_for(vec![child("a"), child("b")]);
        let second = windows.open_for(vec![child("a")]);
        assert!(windows.contains(&child("a")) && windows.contains(&child("b")));
        assert!(!windows.contains(&child("c")));
        drop(first);
        assert!(windows.contains(&child("a")), "still in the second window");
        assert!(!windows.contains(&child("b")));
        drop(second);
        assert!(!windows.contains(&child("a")));
    }
}
