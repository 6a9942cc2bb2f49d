//! `kith backtest`: how well BG/NBD, fitted on a shop's history up to a calibration
//! date, predicts the repeat purchases each customer then made (Fader, Hardie & Lee
//! 2005, figure 5), with the `btyd` library the predict plugin fits with. It reads the
//! shop's counted orders (paid, not fully refunded), days in the shop's time zone:
//! several orders on one day are one purchase, as the buyer summaries count them.

use anyhow::{Context, Result, bail};
use btyd::{MinimumData, TimeUnit, Transaction};
use chrono::NaiveDate;
use clap::Args;
use kith_core::prelude::*;
use serde_json::json;

use crate::config::Config;

#[derive(Args)]
pub struct BacktestArgs {
    /// The shop whose orders are read.
    #[arg(long)]
    shop: i64,
    /// Last day of the calibration period (the shop's date, YYYY-MM-DD): the model is fitted on orders up to its end.
    #[arg(long)]
    calibration_end: NaiveDate,
    /// Last day of the holdout period, whose repeat purchases are predicted; default the day of the shop's latest order.
    #[arg(long)]
    holdout_end: Option<NaiveDate>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    /// Fit even below the minimum data the predict plugin asks for (500 buyers, 100 repeat
    /// buyers and 180 days of history by the calibration end): a small shop's figures are noisy.
    #[arg(long)]
    ignore_minimum: bool,
}

pub fn run(config: &Config, args: BacktestArgs) -> Result<()> {
    if config.postgres_url().is_none() && !config.database.exists() {
        bail!("no database at {}", config.database.display());
    }
    let store = config.open_store()?;
    let shop = store.get_shop(args.shop).with_context(|| format!("reading shop {}", args.shop))?;
    let orders = store.counted_orders(args.shop)?;
    let transactions: Vec<Transaction<i64>> =
        orders.iter().map(|(customer, day, net)| Transaction { customer: *customer, date: *day, value: *net as f64 }).collect();
    let Some(latest) = transactions.iter().map(|t| t.date).max() else {
        bail!("shop {} has no counted orders (paid, not fully refunded) to backtest on", args.shop);
    };
    let holdout_end = args.holdout_end.unwrap_or(latest);
    if holdout_end <= args.calibration_end {
        bail!("the holdout end ({holdout_end}) must come after the calibration end ({})", args.calibration_end);
    }
    let unit = TimeUnit::Days;
    let calibration = btyd::summarize(&transactions, args.calibration_end, unit)?;
    let shortfalls = btyd::check_minimum_data(&calibration, unit, &MinimumData::default());
    if !shortfalls.is_empty() {
        let reasons: Vec<String> = shortfalls.iter().map(ToString::to_string).collect();
        if !args.ignore_minimum {
            bail!(
                "too little data up to {} to fit the models: {}. Run again with --ignore-minimum to fit anyway (the figures of a small shop are noisy)",
                args.calibration_end,
                reasons.join("; ")
            );
        }
        eprintln!("fitting below the minimum data: {}", reasons.join("; "));
    }
    let result = btyd::backtest(&transactions, args.calibration_end, holdout_end, unit)
        .map_err(|e| anyhow::anyhow!("the backtest could not be computed: {e}"))?;
    let fit = &result.fit;
    let p = &fit.params;
    if args.json {
        let buckets: Vec<_> = result
            .buckets
            .iter()
            .map(|b| json!({"frequency": b.label, "customers": b.customers, "predicted": b.predicted, "actual": b.actual}))
            .collect();
        let out = json!({
            "shop_id": args.shop,
            "time_zone": shop.time_zone,
            "calibration_end": args.calibration_end,
            "holdout_end": holdout_end,
            "holdout_days": result.holdout,
            "fit": {"model": "bg/nbd", "r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b, "log_likelihood": fit.log_likelihood,
                    "converged": fit.converged, "iterations": fit.iterations, "customers": fit.customers, "time_unit": "days"},
            "below_minimum": shortfalls.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "buckets": buckets,
            "predicted_total": result.predicted_total,
            "actual_total": result.actual_total,
            "total_error": result.total_error,
            "mean_absolute_error": result.mean_absolute_error,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "Backtest of shop {} ({}, {}): calibration up to {}, holdout {} days to {}",
        args.shop, shop.name, shop.time_zone, args.calibration_end, result.holdout, holdout_end
    );
    println!(
        "BG/NBD fitted over {} buyers (days): r = {:.4}, alpha = {:.4}, a = {:.4}, b = {:.4}, ln L = {:.2}{}",
        fit.customers,
        p.r,
        p.alpha,
        p.a,
        p.b,
        fit.log_likelihood,
        if fit.converged { "" } else { " (did not converge: read the figures with care)" }
    );
    println!();
    println!("Repeat purchases in the holdout, mean per customer, by repeat purchases in the calibration:");
    println!("{:>11} {:>10} {:>10} {:>10}", "calibration", "customers", "predicted", "actual");
    for b in &result.buckets {
        println!("{:>11} {:>10} {:>10.3} {:>10.3}", b.label, b.customers, b.predicted, b.actual);
    }
    println!();
    println!(
        "In total {:.1} predicted against {} actual repeat purchases ({:+.1} %); mean absolute error {:.3} per customer",
        result.predicted_total,
        result.actual_total,
        result.total_error * 100.0,
        result.mean_absolute_error
    );
    Ok(())
}
