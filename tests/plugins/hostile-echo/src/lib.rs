//! One half of a ping-pong: for each event it takes, emits `times` (two
//! unless configured) events of the configured type. Installed twice, one
//! answering the other's events, they would grow the log without end.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

#[derive(serde::Deserialize)]
struct Config {
    emit: String,
    #[serde(default = "two")]
    times: u32,
}

fn two() -> u32 {
    2
}

struct Hostile;

impl TagRule for Hostile {
    fn evaluate(_ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let config = kith_sdk::config::get::<Config>()?;
        let mut out = Vec::new();
        for subject in &batch {
            for i in 0..config.times {
                out.push(Decision::emit_event(Some(subject.customer.id), &config.emit, &serde_json::json!({"n": i})));
            }
        }
        Ok(out)
    }
}

kith_sdk::export_tag_rule!(Hostile);
