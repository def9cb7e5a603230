//! Target networks: the slowly moving copies that DDPG and SAC regress towards.
//!
//! Because parameters are one flat vector, both updates are single passes over it. The
//! chapter's DDPG copies every K steps ([`Mlp::hard_copy_from`]); the DDPG paper and
//! SAC average every step ([`Mlp::polyak_update`]).

use super::mlp::Mlp;
use super::scalar::Scalar;
use crate::error::{Error, Result};

impl<T: Scalar> Mlp<T> {
    /// θ' ← θ: copies `source`'s parameters into `self`.
    pub fn hard_copy_from(&mut self, source: &Mlp<T>) -> Result<()> {
        self.check_same_architecture(source)?;
        self.params_mut().copy_from_slice(source.params());
        Ok(())
    }

    /// θ' ← τ·θ + (1 − τ)·θ' with `self` as θ' and `source` as θ, for τ in [0, 1].
    /// τ = 1 is exactly a hard copy and τ = 0 leaves `self` unchanged.
    pub fn polyak_update(&mut self, source: &Mlp<T>, tau: f64) -> Result<()> {
        if !(0.0..=1.0).contains(&tau) {
            return Err(Error::invalid("tau", format!("{tau} is not in [0, 1]")));
        }
        self.check_same_architecture(source)?;
        if tau == 0.0 {
            return Ok(());
        }
        if tau == 1.0 {
            return self.hard_copy_from(source);
        }
        let (tau, keep) = (T::from_f64(tau), T::from_f64(1.0 - tau));
        for (target, &online) in self.params_mut().iter_mut().zip(source.params()) {
            *target = keep * *target + tau * online;
        }
        Ok(())
    }

    fn check_same_architecture(&self, source: &Mlp<T>) -> Result<()> {
        if !self.same_architecture(source) {
            return Err(Error::invalid(
                "source",
                format!(
                    "network with sizes {:?} ({:?}/{:?}) cannot update one with sizes {:?} ({:?}/{:?})",
                    source.sizes(),
                    source.hidden_activation(),
                    source.output_activation(),
                    self.sizes(),
                    self.hidden_activation(),
                    self.output_activation()
                ),
            ));
        }
        Ok(())
    }
}
