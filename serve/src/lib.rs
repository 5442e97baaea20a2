//! The HTTP face of the platform: prediction API, OpenAPI docs and the
//! dashboard. It serves what analytics-lib computes and never trains.
//!
//! * [`configuration`]: settings, layered defaults → file → `APP_*` → flags;
//! * [`startup`]: [`startup::Application`] binds (port 0 in tests), loads the
//!   data and the registry's live models, and runs the server with the hot-reload task;
//! * [`routes`]: one file per route family (`/health` `/ready`, `/predict`,
//!   `/segment`, `/models`, `/openapi.json` `/docs`);
//! * [`model`]: the live spend model and its contributions;
//!   [`segment_model`]: the live segment model; [`state`]: the atomic model
//!   swaps and the registry-driven hot reload; [`snapshot`]: the data snapshot
//!   behind the lookups and the dashboard, refreshed without a restart;
//!   [`input`]: request records read field by field; [`error`]: the one error shape;
//! * [`auth`]: bearer keys, scopes and the [`auth::Caller`] extractor;
//!   [`limits`]: the heavy-request cap (429); [`body`]: bounded body reads
//!   (size, deadline); [`access_log`]: one line per request; [`memory`]:
//!   freed memory given back once a data snapshot is built.

pub mod access_log;
pub mod auth;
pub mod body;
pub mod configuration;
pub mod dashboard;
pub mod error;
pub mod input;
pub mod limits;
pub mod memory;
pub mod model;
pub mod routes;
pub mod segment_model;
pub mod snapshot;
pub mod startup;
pub mod state;
