//! Router tests: the whole app driven with `oneshot`, on a real SQLite file.

mod authorization;
mod harness;
mod plugins;
mod routes;
