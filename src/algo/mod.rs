//! The chapter's algorithms, one file per pseudocode label.

pub mod ddpg;
pub mod deterministic_policy;
pub mod nfqca;
