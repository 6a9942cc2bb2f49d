//! Recurses until the stack runs out.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    #[allow(unused_variables, unreachable_code, reason = "each hostile plugin misbehaves in its own way")]
    fn evaluate(ctx: &ShopContext, batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        #[allow(unconditional_recursion, reason = "the point of this plugin")]
        fn down(n: u64) -> u64 {
            std::hint::black_box(down(std::hint::black_box(n + 1)) + 1)
        }
        Ok(vec![Decision::add_tag(1, &down(0).to_string(), "")])
    }
}

kith_sdk::export_tag_rule!(Hostile);
