//! Router tests: the whole app driven with `oneshot`, on a real SQLite file.

mod authorization;
mod commerce;
mod console;
mod console_assets;
mod contract;
mod harness;
mod journeys;
mod personal;
mod plugins;
mod routes;
mod segments;
