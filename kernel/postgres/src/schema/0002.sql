-- Every port on a shop's rows now takes the shop (kith_core::ports), so each statement
-- reaches a row by (shop_id, id) or (shop_id, customer_id, ...), which the primary and
-- unique keys serve, and Citus routes it to the shop's worker. The indexes for reading by
-- id or customer alone go: one index fewer to write on each insert of these tables.
DROP INDEX customers_id;
DROP INDEX orders_id;
DROP INDEX behaviours_id;
DROP INDEX merges_id;
DROP INDEX points_ledger_id;
DROP INDEX dead_letters_id;
DROP INDEX plugin_runs_id;
DROP INDEX coupon_templates_id;
DROP INDEX coupons_id;
DROP INDEX rewards_id;
DROP INDEX redemptions_id;
DROP INDEX messages_id;
DROP INDEX segments_id;
DROP INDEX segment_snapshots_id;
DROP INDEX journeys_id;
DROP INDEX journey_runs_id;
DROP INDEX tags_customer;
DROP INDEX scores_customer;
DROP INDEX consents_customer;
