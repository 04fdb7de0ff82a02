//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod canonical;
pub mod coverage;
pub mod decode_tool;
pub mod harness;
pub mod sim;
pub mod state_checks;
pub mod vectors;
