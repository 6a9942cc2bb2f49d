//! Host memory outside the call's linear memory: creates 50,000 `wasi:http`
//! header sets of 12 KiB each (600 MB if nothing stopped it) and forgets
//! their handles, so the host must keep them all.

use kith_sdk::bindings::channel_connector::wasi::http::types::Fields;
use kith_sdk::{ChannelConnector, Delivery, Error, InboundRequest, Message, Receipt, ShopContext};

struct Hostile;

impl ChannelConnector for Hostile {
    fn deliver(_ctx: &ShopContext, _message: Message) -> Result<Delivery, Error> {
        let value = vec![b'a'; 12 << 10];
        let mut refused = 0;
        for i in 0..50_000 {
            let fields = Fields::new();
            if fields.append(&format!("x-pad-{i}"), &value).is_err() {
                refused += 1;
            }
            std::mem::forget(fields);
        }
        Ok(Delivery::Accepted(Some(format!("{refused} refused"))))
    }

    fn parse_receipt(_ctx: &ShopContext, _request: InboundRequest) -> Result<Vec<Receipt>, Error> {
        Ok(Vec::new())
    }
}

kith_sdk::export_channel_connector!(Hostile);
