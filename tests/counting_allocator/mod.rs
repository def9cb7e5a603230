//! The global allocator of the test binaries that check a training step allocates
//! nothing: it counts the allocations made, and the bytes asked for, on a thread while
//! [`allocated_by`] runs there. Other threads and other times are not counted.
//! Use it with `mod counting_allocator;`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
    static BYTES: Cell<u64> = const { Cell::new(0) };
}

fn record(bytes: usize) {
    // `try_with`: the allocator may run while thread-locals are being torn down.
    let _ = COUNTING.try_with(|counting| {
        if counting.get() {
            CALLS.with(|n| n.set(n.get() + 1));
            BYTES.with(|b| b.set(b.get() + bytes as u64));
        }
    });
}

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// What [`allocated_by`] counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Allocated {
    /// Calls to `alloc`, `alloc_zeroed` and `realloc`.
    pub calls: u64,
    /// Bytes those calls asked for.
    pub bytes: u64,
}

/// Runs `f`, counting the allocations it makes on this thread.
pub fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, Allocated) {
    CALLS.with(|n| n.set(0));
    BYTES.with(|b| b.set(0));
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    let allocated = Allocated {
        calls: CALLS.with(Cell::get),
        bytes: BYTES.with(Cell::get),
    };
    (result, allocated)
}
