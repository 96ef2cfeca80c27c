//! The reentrancy guard: a hook entered while this thread is already inside
//! one (our own code calling a hooked function) passes straight through.
//!
//! A `const` thread-local `Cell<bool>` needs no allocation and registers no
//! destructor, so it is safe even in hooks that run before the constructor or
//! while a thread is being torn down.

use std::cell::Cell;

thread_local! {
    static INSIDE: Cell<bool> = const { Cell::new(false) };
}

/// Held while this thread runs shim logic.
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = INSIDE.try_with(|inside| inside.set(false));
    }
}

/// Enters shim logic, or `None` when this thread already is inside it (or
/// its thread-locals are gone), in which case the caller passes through.
pub fn enter() -> Option<Guard> {
    INSIDE
        // `then`, not `then_some`: a guard made for a refused entry would
        // be dropped at once, and its drop would release the outer entry.
        .try_with(|inside| (!inside.replace(true)).then(|| Guard(())))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    #[test]
    fn nested_entry_is_refused_until_released() {
        let outer = super::enter().expect("first entry");
        assert!(super::enter().is_none());
        assert!(
            super::enter().is_none(),
            "a refused entry keeps the outer one held"
        );
        drop(outer);
        assert!(super::enter().is_some());
    }
}
