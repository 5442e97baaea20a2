//! The one integration-test binary: the real server over HTTP.

mod dashboard;
mod docs;
mod health;
mod helpers;
mod models;
mod predict;
mod refresh;
mod reload;
mod schemathesis;
mod security;
mod segment;
mod snowflake;
mod validation;
