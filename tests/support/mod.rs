//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod canonical;
pub mod client_sim;
pub mod coverage;
pub mod decode_tool;
pub mod fuzz_checks;
pub mod harness;
pub mod noise;
pub mod server;
pub mod sim;
pub mod state_checks;
pub mod vectors;
