//! A customer's row as the ports and the segment compiler read it: the columns, the row
//! as the core's `Customer`, and the records of a page of customers (identities, tags,
//! scores) in one query each.

use std::collections::HashMap;

use chrono::NaiveDate;
use kith_domain::model::{Customer, IdentityView, Profile, Score, Stats, Tag};
use kith_domain::plugin::{Part, Reads};
use tokio_postgres::Row;

use crate::pg::{CoreResult as Result, Pg, get, time};

macro_rules! customer_columns {
    ($points:literal) => {
        concat!(
            "c.id, c.name, c.gender, c.birthday, c.province, c.city, c.attributes, c.created_at, c.updated_at, ",
            "c.total_spent, c.order_count, c.first_order_at, c.last_order_at, c.refund_count, c.refund_amount, c.tier, ",
            $points
        )
    };
}
/// Columns of a customer row, the points balance summed from the ledger; the table is
/// aliased `c`. Read with [`row_to_customer`].
pub(crate) const CUSTOMER_COLUMNS: &str = customer_columns!(
    "(SELECT COALESCE(SUM(p.points), 0)::BIGINT FROM points_ledger p WHERE p.shop_id = c.shop_id AND p.customer_id = c.id)"
);
/// The same columns without summing the points ledger (the balance reads 0), for
/// plugins that do not read points.
pub(crate) const CUSTOMER_COLUMNS_NO_POINTS: &str = customer_columns!("0::BIGINT");

fn opt_time(ms: Option<i64>) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
    ms.map(time).transpose()
}

pub(crate) fn stats_from(row: &Row, at: usize) -> Result<Stats> {
    let total_spent: i64 = get(row, at)?;
    let order_count: i64 = get(row, at + 1)?;
    Ok(Stats {
        total_spent,
        order_count,
        first_order_at: opt_time(get(row, at + 2)?)?,
        last_order_at: opt_time(get(row, at + 3)?)?,
        average_order_value: (order_count > 0).then(|| total_spent.div_euclid(order_count)),
        refund_count: get(row, at + 4)?,
        refund_amount: get(row, at + 5)?,
    })
}

pub(crate) fn row_to_customer(row: &Row) -> Result<Customer> {
    let birthday: Option<String> = get(row, 3)?;
    let attributes: String = get(row, 6)?;
    Ok(Customer {
        id: get(row, 0)?,
        profile: Profile {
            name: get(row, 1)?,
            gender: get(row, 2)?,
            birthday: birthday.and_then(|b| NaiveDate::parse_from_str(&b, "%Y-%m-%d").ok()),
            province: get(row, 4)?,
            city: get(row, 5)?,
            attributes: serde_json::from_str(&attributes).unwrap_or_default(),
        },
        identities: Vec::new(),
        stats: stats_from(row, 9)?,
        tags: Vec::new(),
        scores: Vec::new(),
        points: get(row, 16)?,
        tier: get(row, 15)?,
        created_at: time(get(row, 7)?)?,
        updated_at: time(get(row, 8)?)?,
    })
}

/// Which records [`load_records`] fills in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Records {
    pub identities: bool,
    pub tags: bool,
    pub scores: bool,
}

impl Records {
    /// Identities, tags and scores.
    pub(crate) const ALL: Records = Records { identities: true, tags: true, scores: true };

    /// What a plugin that reads `reads` is given: tags and scores when read, never identities.
    pub(crate) fn plugin(reads: Reads) -> Records {
        Records { identities: false, tags: reads.has(Part::Tags), scores: reads.has(Part::Scores) }
    }
}

/// Fill the `parts` records (identities, tags, scores) of a page of the shop's customers:
/// one query each for the page, not one per customer.
pub(crate) fn load_records(pg: &Pg<'_>, shop_id: i64, customers: &mut [Customer], parts: Records) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = customers.iter().map(|c| c.id).collect();
    let at: HashMap<i64, usize> = customers.iter().enumerate().map(|(i, c)| (c.id, i)).collect();
    if parts.identities {
        for row in pg.query(
            "SELECT customer_id, kind, value, created_at FROM identities WHERE shop_id = $1 AND customer_id = ANY($2)
             ORDER BY customer_id, kind, created_at, value",
            &[&shop_id, &ids],
        )? {
            let identity = IdentityView { kind: get(&row, 1)?, value: get(&row, 2)?, created_at: time(get(&row, 3)?)? };
            customers[at[&get::<i64>(&row, 0)?]].identities.push(identity);
        }
    }
    if parts.tags {
        for row in pg.query(
            "SELECT customer_id, tag, source, reason, created_at FROM tags WHERE shop_id = $1 AND customer_id = ANY($2)
             ORDER BY customer_id, tag, source",
            &[&shop_id, &ids],
        )? {
            let tag = Tag { tag: get(&row, 1)?, source: get(&row, 2)?, reason: get(&row, 3)?, created_at: time(get(&row, 4)?)? };
            customers[at[&get::<i64>(&row, 0)?]].tags.push(tag);
        }
    }
    if parts.scores {
        for row in pg.query(
            "SELECT customer_id, model, value, label, explanation, scored_at FROM scores WHERE shop_id = $1 AND customer_id = ANY($2)
             ORDER BY customer_id, model",
            &[&shop_id, &ids],
        )? {
            let score = Score {
                model: get(&row, 1)?,
                value: get(&row, 2)?,
                label: get(&row, 3)?,
                explanation: get(&row, 4)?,
                scored_at: time(get(&row, 5)?)?,
            };
            customers[at[&get::<i64>(&row, 0)?]].scores.push(score);
        }
    }
    Ok(())
}
