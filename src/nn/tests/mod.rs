//! Properties of the network code that could fail: gradients against finite
//! differences, the forward pass against its definition, backends against each other,
//! Adam against its formulas and on a fitting task, target updates, checkpoints, and
//! the typed errors for bad input.

mod adam;
mod gradients;
mod network;

use rand::{Rng as _, SeedableRng};

use crate::rng::Rng;

fn rng(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

fn uniform_vec<T: super::Scalar>(len: usize, rng: &mut Rng) -> Vec<T> {
    (0..len)
        .map(|_| T::from_f64(rng.gen_range(-1.0..1.0)))
        .collect()
}

fn field_of<T: std::fmt::Debug>(result: crate::Result<T>) -> String {
    match result {
        Err(crate::Error::InvalidParameter { field, .. }) => field,
        other => panic!("expected InvalidParameter, got {other:?}"),
    }
}
