//! Integration tests of the operator data generator, in one test binary.

mod common;
mod determinism;
mod faults;
mod identifiers;
mod manifest;
mod postgres;
mod properties;
