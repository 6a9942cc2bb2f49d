//! Host memory through `wasi:random`: asks for 64 MiB of random bytes in one
//! call, which the host allocates before copying them into the guest.

use kith_sdk::{Decision, Error, ShopContext, Subject, TagRule};

struct Hostile;

impl TagRule for Hostile {
    fn evaluate(_ctx: &ShopContext, _batch: Vec<Subject>) -> Result<Vec<Decision>, Error> {
        let bytes = wasip2::random::random::get_random_bytes(64 << 20);
        let insecure = wasip2::random::insecure::get_insecure_random_bytes(64 << 20);
        Err(Error::Invalid(format!("the host handed over {} + {} random bytes", bytes.len(), insecure.len())))
    }
}

kith_sdk::export_tag_rule!(Hostile);
