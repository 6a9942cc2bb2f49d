//! Router tests: the whole app driven with `oneshot`, on a real SQLite file.

mod authorization;
mod commerce;
mod harness;
mod journeys;
mod plugins;
mod routes;
mod segments;
