//! The HTTP face of the platform: prediction API, OpenAPI docs and (later)
//! the dashboard. It serves what analytics-lib computes and never trains.
//!
//! * [`configuration`]: settings, layered defaults → file → `APP_*` → flags;
//! * [`startup`]: [`startup::Application`] binds (port 0 in tests), loads the
//!   data and the live model, and runs the server with the hot-reload task;
//! * [`routes`]: one file per route family (`/health` `/ready`, `/predict`,
//!   `/models`, `/openapi.json` `/docs`);
//! * [`model`]: the live model and its contributions; [`state`]: the atomic
//!   model swap; [`input`]: request records read field by field;
//!   [`error`]: the one error shape.

pub mod configuration;
pub mod error;
pub mod input;
pub mod model;
pub mod routes;
pub mod startup;
pub mod state;
