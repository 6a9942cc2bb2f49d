//! Versioned migrations, applied in order at start. Never change what a released
//! migration ends in: add the next one. How it gets there may change when every
//! database still ends in the same schema and data (migration 11 did, to work in
//! batches). ARCHITECTURE.md documents the resulting schema.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::Result;

/// One migration: SQL applied in one transaction, or work too large for one
/// transaction, which commits as it goes and resumes where a stopped run ended.
enum Migration {
    Sql(&'static str),
    /// Commits its batches and records the version it is given in the transaction that ends its work.
    Batched(fn(&mut Connection, i64, &Batching) -> Result<()>),
}

/// Migration N is `MIGRATIONS[N - 1]`; `PRAGMA user_version` records the last applied.
const MIGRATIONS: &[Migration] = &[
    // 1: shops, keys, customers and their records, the event log, the audit log.
    Migration::Sql(
        r#"
    CREATE TABLE shops (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        time_zone TEXT NOT NULL,
        currency TEXT NOT NULL,
        region TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );

    CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        shop_id INTEGER REFERENCES shops(id),
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        scopes TEXT NOT NULL,
        secret_hash BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER
    );
    CREATE INDEX api_keys_shop ON api_keys(shop_id);

    CREATE TABLE customers (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        name TEXT,
        gender TEXT,
        birthday TEXT,
        province TEXT,
        city TEXT,
        attributes TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        merged_into INTEGER REFERENCES customers(id),
        total_spent INTEGER NOT NULL DEFAULT 0,
        order_count INTEGER NOT NULL DEFAULT 0,
        first_order_at INTEGER,
        last_order_at INTEGER,
        refund_count INTEGER NOT NULL DEFAULT 0,
        refund_amount INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX customers_shop ON customers(shop_id, merged_into);
    CREATE INDEX customers_shop_updated ON customers(shop_id, updated_at);

    CREATE TABLE identities (
        shop_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        created_at INTEGER NOT NULL,
        PRIMARY KEY (shop_id, kind, value)
    ) WITHOUT ROWID;
    CREATE INDEX identities_customer ON identities(customer_id);

    CREATE TABLE orders (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        external_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('paid', 'partially_refunded', 'refunded')),
        amount INTEGER NOT NULL,
        refunded_amount INTEGER NOT NULL DEFAULT 0,
        coupon_code TEXT,
        paid_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (shop_id, external_id)
    );
    CREATE INDEX orders_customer ON orders(customer_id, paid_at);

    CREATE TABLE order_items (
        order_id INTEGER NOT NULL REFERENCES orders(id),
        line INTEGER NOT NULL,
        sku TEXT NOT NULL,
        product_name TEXT,
        category TEXT,
        quantity INTEGER NOT NULL,
        unit_price INTEGER NOT NULL,
        discount INTEGER NOT NULL,
        coupon_code TEXT,
        PRIMARY KEY (order_id, line)
    ) WITHOUT ROWID;

    CREATE TABLE refunds (
        id INTEGER PRIMARY KEY,
        order_id INTEGER NOT NULL REFERENCES orders(id),
        amount INTEGER NOT NULL,
        reason TEXT,
        refunded_at INTEGER NOT NULL
    );
    CREATE INDEX refunds_order ON refunds(order_id);

    CREATE TABLE behaviours (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        kind TEXT NOT NULL CHECK (kind IN ('view', 'favorite', 'cart', 'purchase')),
        sku TEXT,
        product_name TEXT,
        category TEXT,
        occurred_at INTEGER NOT NULL
    );
    CREATE INDEX behaviours_customer ON behaviours(customer_id, occurred_at);

    CREATE TABLE tags (
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        tag TEXT NOT NULL,
        source TEXT NOT NULL,
        shop_id INTEGER NOT NULL,
        reason TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (customer_id, tag, source)
    ) WITHOUT ROWID;
    CREATE INDEX tags_shop_tag ON tags(shop_id, tag, customer_id);

    CREATE TABLE scores (
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        model TEXT NOT NULL,
        shop_id INTEGER NOT NULL,
        value REAL NOT NULL,
        label TEXT,
        explanation TEXT,
        scored_at INTEGER NOT NULL,
        PRIMARY KEY (customer_id, model)
    ) WITHOUT ROWID;

    CREATE TABLE merges (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        survivor_id INTEGER NOT NULL REFERENCES customers(id),
        merged_id INTEGER NOT NULL REFERENCES customers(id),
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        detail TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        unmerged_at INTEGER,
        unmerged_by TEXT
    );
    CREATE INDEX merges_survivor ON merges(survivor_id);
    CREATE INDEX merges_merged ON merges(merged_id);

    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        type TEXT NOT NULL,
        customer_id INTEGER,
        payload TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX events_shop ON events(shop_id, seq);
    CREATE INDEX events_customer ON events(customer_id, seq);

    CREATE TABLE ingest_receipts (
        shop_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        customer_id INTEGER,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (shop_id, event_id)
    ) WITHOUT ROWID;

    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER,
        key_id TEXT,
        action TEXT NOT NULL,
        target TEXT,
        detail TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX audit_shop ON audit_log(shop_id, id);
    "#,
    ),
    // 2: the plugin catalogue, per-shop subscriptions with their cursors,
    // dead letters, plugin state, logs and call records, runs; the points
    // ledger and tiers that loyalty decisions write; who emitted an event.
    Migration::Sql(
        r#"
    ALTER TABLE events ADD COLUMN source TEXT;
    ALTER TABLE customers ADD COLUMN tier TEXT;

    CREATE TABLE points_ledger (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        points INTEGER NOT NULL,
        source TEXT NOT NULL,
        source_key TEXT NOT NULL,
        reason TEXT NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL,
        UNIQUE (shop_id, source, source_key)
    );
    CREATE INDEX points_customer ON points_ledger(customer_id);

    CREATE TABLE tier_history (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        from_tier TEXT,
        to_tier TEXT NOT NULL,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX tier_history_customer ON tier_history(customer_id, id);

    CREATE TABLE plugin_blobs (
        sha256 TEXT PRIMARY KEY,
        bytes BLOB NOT NULL
    );

    CREATE TABLE plugins (
        id TEXT NOT NULL,
        version TEXT NOT NULL,
        kind TEXT NOT NULL,
        api_version TEXT NOT NULL,
        manifest TEXT NOT NULL,
        sha256 TEXT NOT NULL REFERENCES plugin_blobs(sha256),
        size INTEGER NOT NULL,
        installed_at INTEGER NOT NULL,
        installed_by TEXT NOT NULL,
        PRIMARY KEY (id, version)
    ) WITHOUT ROWID;

    CREATE TABLE subscriptions (
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        plugin_id TEXT NOT NULL,
        version_req TEXT NOT NULL,
        version TEXT NOT NULL,
        config TEXT NOT NULL,
        grant_json TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled', 'tripped')),
        run_every_hours INTEGER,
        cursor INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        retry_at INTEGER,
        last_error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (shop_id, plugin_id),
        FOREIGN KEY (plugin_id, version) REFERENCES plugins(id, version)
    ) WITHOUT ROWID;

    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        plugin_id TEXT NOT NULL,
        version TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        error TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        redriven_at INTEGER
    );
    CREATE INDEX dead_letters_plugin ON dead_letters(shop_id, plugin_id, id);

    CREATE TABLE plugin_kv (
        shop_id INTEGER NOT NULL,
        plugin_id TEXT NOT NULL,
        key TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (shop_id, plugin_id, key)
    ) WITHOUT ROWID;

    CREATE TABLE plugin_logs (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL,
        plugin_id TEXT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX plugin_logs_plugin ON plugin_logs(shop_id, plugin_id, id);

    CREATE TABLE plugin_calls (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL,
        plugin_id TEXT NOT NULL,
        duration_us INTEGER NOT NULL,
        error TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX plugin_calls_plugin ON plugin_calls(shop_id, plugin_id, id);

    CREATE TABLE plugin_runs (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        plugin_id TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
        total INTEGER NOT NULL,
        done INTEGER NOT NULL DEFAULT 0,
        checkpoint INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        retry_at INTEGER,
        error TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE INDEX plugin_runs_plugin ON plugin_runs(shop_id, plugin_id, id);
    "#,
    ),
    // 3: loyalty (ledger batches, rewards, redemptions), coupons, the outbox
    // with consents and connector routes, and per-shop settings.
    Migration::Sql(
        r#"
    ALTER TABLE points_ledger ADD COLUMN kind TEXT NOT NULL DEFAULT 'earn'
        CHECK (kind IN ('earn', 'redeem', 'expire', 'clawback', 'adjust'));
    -- For positive entries: the points of the batch not yet drawn or expired.
    ALTER TABLE points_ledger ADD COLUMN remaining INTEGER NOT NULL DEFAULT 0;
    -- The order (row id) an earn or a claw-back belongs to.
    ALTER TABLE points_ledger ADD COLUMN order_id INTEGER REFERENCES orders(id);
    -- The batch (ledger id) an expire entry closed.
    ALTER TABLE points_ledger ADD COLUMN batch_id INTEGER;
    UPDATE points_ledger SET kind = 'clawback' WHERE points < 0;
    UPDATE points_ledger SET remaining = points WHERE points > 0;
    CREATE INDEX points_open_batches ON points_ledger(customer_id, created_at, id) WHERE remaining > 0;
    CREATE INDEX points_expiring ON points_ledger(expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;
    CREATE INDEX points_order ON points_ledger(order_id) WHERE order_id IS NOT NULL;

    CREATE TABLE shop_settings (
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        section TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (shop_id, section)
    ) WITHOUT ROWID;

    CREATE TABLE coupon_templates (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        name TEXT NOT NULL,
        face_value INTEGER NOT NULL,
        threshold INTEGER NOT NULL,
        valid_days INTEGER,
        valid_until INTEGER,
        per_customer_limit INTEGER NOT NULL,
        budget_count INTEGER,
        budget_money INTEGER,
        active INTEGER NOT NULL,
        issued INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX coupon_templates_shop ON coupon_templates(shop_id, id);

    CREATE TABLE coupons (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        template_id INTEGER NOT NULL REFERENCES coupon_templates(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        code TEXT NOT NULL,
        source TEXT NOT NULL,
        source_key TEXT NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        order_id INTEGER REFERENCES orders(id),
        redeemed_at INTEGER,
        UNIQUE (shop_id, code),
        UNIQUE (shop_id, source, source_key)
    );
    CREATE INDEX coupons_template ON coupons(template_id, customer_id);
    CREATE INDEX coupons_customer ON coupons(customer_id, id);

    CREATE TABLE rewards (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        name TEXT NOT NULL,
        description TEXT,
        points_cost INTEGER NOT NULL,
        template_id INTEGER NOT NULL REFERENCES coupon_templates(id),
        stock INTEGER,
        redeemed INTEGER NOT NULL DEFAULT 0,
        active INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX rewards_shop ON rewards(shop_id, id);

    CREATE TABLE redemptions (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        reward_id INTEGER NOT NULL REFERENCES rewards(id),
        request_id TEXT NOT NULL,
        points INTEGER NOT NULL,
        ledger_id INTEGER NOT NULL REFERENCES points_ledger(id),
        coupon_id INTEGER NOT NULL REFERENCES coupons(id),
        balance_after INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (shop_id, request_id)
    );
    CREATE INDEX redemptions_customer ON redemptions(customer_id, id);

    CREATE TABLE consents (
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        channel TEXT NOT NULL,
        shop_id INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
        source TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (customer_id, channel)
    ) WITHOUT ROWID;

    CREATE TABLE connectors (
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        plugin_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        receipt_token TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (shop_id, plugin_id)
    ) WITHOUT ROWID;

    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        channel TEXT NOT NULL,
        template TEXT NOT NULL,
        variables TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'suppressed')),
        reason TEXT,
        recipient TEXT,
        plugin_id TEXT,
        provider_id TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        lease_until INTEGER,
        source TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        sent_at INTEGER,
        delivered_at INTEGER,
        UNIQUE (shop_id, idempotency_key)
    );
    CREATE INDEX messages_queued ON messages(next_attempt_at) WHERE status = 'queued';
    CREATE INDEX messages_sending ON messages(lease_until) WHERE status = 'sending';
    CREATE INDEX messages_customer ON messages(customer_id, channel, sent_at);
    CREATE INDEX messages_provider ON messages(shop_id, plugin_id, provider_id);
    CREATE INDEX messages_shop ON messages(shop_id, id);

    CREATE TABLE message_events (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL REFERENCES messages(id),
        status TEXT NOT NULL,
        detail TEXT NOT NULL,
        at INTEGER NOT NULL
    );
    CREATE INDEX message_events_message ON message_events(message_id, id);
    "#,
    ),
    // 4: segments with their versions, tracked membership, snapshots and daily
    // counts; triggers mark customers whose data changed for re-evaluation.
    Migration::Sql(
        r#"
    CREATE TABLE segments (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        name TEXT NOT NULL,
        description TEXT,
        version INTEGER NOT NULL,
        timed INTEGER NOT NULL,
        swept_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        deleted_at INTEGER
    );
    CREATE INDEX segments_shop ON segments(shop_id, id) WHERE deleted_at IS NULL;

    CREATE TABLE segment_versions (
        segment_id INTEGER NOT NULL REFERENCES segments(id),
        version INTEGER NOT NULL,
        definition TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (segment_id, version)
    ) WITHOUT ROWID;

    CREATE TABLE segment_members (
        segment_id INTEGER NOT NULL REFERENCES segments(id),
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        entered_at INTEGER NOT NULL,
        PRIMARY KEY (segment_id, customer_id)
    ) WITHOUT ROWID;
    CREATE INDEX segment_members_customer ON segment_members(customer_id);

    CREATE TABLE segment_snapshots (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        segment_id INTEGER NOT NULL REFERENCES segments(id),
        version INTEGER NOT NULL,
        size INTEGER NOT NULL,
        taken_at INTEGER NOT NULL,
        taken_by TEXT NOT NULL
    );
    CREATE INDEX segment_snapshots_segment ON segment_snapshots(segment_id, id);

    CREATE TABLE segment_snapshot_members (
        snapshot_id INTEGER NOT NULL REFERENCES segment_snapshots(id),
        customer_id INTEGER NOT NULL,
        PRIMARY KEY (snapshot_id, customer_id)
    ) WITHOUT ROWID;

    CREATE TABLE segment_counts (
        segment_id INTEGER NOT NULL REFERENCES segments(id),
        day TEXT NOT NULL,
        members INTEGER NOT NULL,
        PRIMARY KEY (segment_id, day)
    ) WITHOUT ROWID;

    -- Customers whose data changed since their segments were last evaluated.
    CREATE TABLE segment_dirty (
        shop_id INTEGER NOT NULL,
        customer_id INTEGER NOT NULL,
        PRIMARY KEY (shop_id, customer_id)
    ) WITHOUT ROWID;

    CREATE TRIGGER segment_dirty_customer_insert AFTER INSERT ON customers
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.id); END;
    CREATE TRIGGER segment_dirty_customer_update AFTER UPDATE ON customers
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.id); END;
    CREATE TRIGGER segment_dirty_tag_insert AFTER INSERT ON tags
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    CREATE TRIGGER segment_dirty_tag_delete AFTER DELETE ON tags
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = OLD.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (OLD.shop_id, OLD.customer_id); END;
    CREATE TRIGGER segment_dirty_tag_update AFTER UPDATE ON tags
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    CREATE TRIGGER segment_dirty_score_insert AFTER INSERT ON scores
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    CREATE TRIGGER segment_dirty_score_update AFTER UPDATE ON scores
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    CREATE TRIGGER segment_dirty_score_delete AFTER DELETE ON scores
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = OLD.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (OLD.shop_id, OLD.customer_id); END;
    CREATE TRIGGER segment_dirty_points AFTER INSERT ON points_ledger
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    CREATE TRIGGER segment_dirty_behaviour AFTER INSERT ON behaviours
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    CREATE TRIGGER segment_dirty_order AFTER INSERT ON orders
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    CREATE TRIGGER segment_dirty_order_update AFTER UPDATE ON orders
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT OR IGNORE INTO segment_dirty (shop_id, customer_id) VALUES (NEW.shop_id, NEW.customer_id); END;
    "#,
    ),
    // 5: journeys, their versions, the runs of customers and each step a run went through.
    Migration::Sql(
        r#"
    CREATE TABLE journeys (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        name TEXT NOT NULL,
        description TEXT,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        cursor INTEGER NOT NULL DEFAULT 0,
        date_through TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        activated_at INTEGER
    );
    CREATE INDEX journeys_shop ON journeys(shop_id, id);
    CREATE INDEX journeys_status ON journeys(status);

    CREATE TABLE journey_versions (
        journey_id INTEGER NOT NULL REFERENCES journeys(id),
        version INTEGER NOT NULL,
        definition TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        created_by TEXT NOT NULL,
        PRIMARY KEY (journey_id, version)
    );

    CREATE TABLE journey_runs (
        id INTEGER PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        journey_id INTEGER NOT NULL REFERENCES journeys(id),
        version INTEGER NOT NULL,
        customer_id INTEGER NOT NULL REFERENCES customers(id),
        entry_key TEXT NOT NULL,
        entry_seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        holdout INTEGER NOT NULL,
        variant TEXT,
        step TEXT,
        due_at INTEGER,
        context TEXT NOT NULL,
        entered_at INTEGER NOT NULL,
        goal_until INTEGER,
        converted_at INTEGER,
        revenue INTEGER,
        ended_at INTEGER,
        end_reason TEXT,
        UNIQUE (journey_id, customer_id, entry_key)
    );
    CREATE INDEX journey_runs_due ON journey_runs(due_at) WHERE status = 'active';
    CREATE INDEX journey_runs_customer ON journey_runs(customer_id, journey_id);
    CREATE INDEX journey_runs_journey ON journey_runs(journey_id, status);

    CREATE TABLE journey_steps (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES journey_runs(id),
        step TEXT NOT NULL,
        kind TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        message_id TEXT,
        coupon_id INTEGER,
        at INTEGER NOT NULL,
        UNIQUE (run_id, step)
    );
    "#,
    ),
    // 6: behaviour conditions of segments (a kind in a window, of a category or sku)
    // read the index alone, not every behaviour row of the window; merged customers
    // are found by whom they were merged into.
    Migration::Sql(
        r#"
    CREATE INDEX behaviours_kind ON behaviours(customer_id, kind, occurred_at, category, sku);
    -- "This customer and those merged into them" (journey entry rules, goals and
    -- branches, coupons) found merged customers by scanning every customer: the
    -- entry of each run cost O(customers).
    CREATE INDEX customers_merged_into ON customers(merged_into) WHERE merged_into IS NOT NULL;
    "#,
    ),
    // 7: the shop's buyers over a window (the context RFM scores against) are read
    // from the window's entries of one covering index; before, every order of the shop
    // was read through its row (tens of seconds at ten million orders).
    Migration::Sql(
        r#"
    CREATE INDEX orders_shop_paid ON orders(shop_id, paid_at, customer_id, status, amount, refunded_amount);
    "#,
    ),
    // 8: the same context reads a shop's orders in customer order instead, so that
    // its GROUP BY customer needs no temporary B-tree: a window of a year holds most
    // orders, and at ten million orders the sort was most of the time (5 s → 2 s).
    Migration::Sql(
        r#"
    DROP INDEX orders_shop_paid;
    CREATE INDEX orders_shop_customer ON orders(shop_id, customer_id, paid_at, status, amount, refunded_amount);
    "#,
    ),
    // 9: a segment counted over the whole shop reads a score condition as one set of
    // customers from this index, where it looked the condition up for each customer
    // (a million primary-key seeks at a million customers).
    Migration::Sql(
        r#"
    CREATE INDEX scores_shop_model ON scores(shop_id, model, label, value);
    "#,
    ),
    // 10: the triggers that mark changed customers no longer rely on `INSERT OR IGNORE`. SQLite
    // applies the conflict policy of the statement that fired a trigger to the trigger's own
    // statements, so under the upsert of a score or a tag (`ON CONFLICT DO UPDATE`) a customer
    // already marked failed the whole write with a UNIQUE error: the second order of a customer
    // stalled every plugin that scores. A mark is now inserted only when missing.
    // Customers are first seen at the earliest time of their events, not when the first of
    // them arrived: history imported after a customer was created counts them in the past.
    Migration::Sql(
        r#"
    UPDATE customers SET created_at = MIN(created_at,
        COALESCE((SELECT MIN(o.paid_at) FROM orders o WHERE o.customer_id = customers.id), created_at),
        COALESCE((SELECT MIN(b.occurred_at) FROM behaviours b WHERE b.customer_id = customers.id), created_at))
    WHERE merged_into IS NULL
      AND (EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id AND o.paid_at < customers.created_at)
        OR EXISTS (SELECT 1 FROM behaviours b WHERE b.customer_id = customers.id AND b.occurred_at < customers.created_at));
    -- A customer's first and last order are those that count: fully refunded ones do not.
    UPDATE customers SET
        first_order_at = (SELECT MIN(o.paid_at) FROM orders o WHERE o.customer_id = customers.id AND o.status != 'refunded'),
        last_order_at = (SELECT MAX(o.paid_at) FROM orders o WHERE o.customer_id = customers.id AND o.status != 'refunded')
    WHERE merged_into IS NULL AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = customers.id AND o.status = 'refunded');
    DROP TRIGGER segment_dirty_customer_insert;
    CREATE TRIGGER segment_dirty_customer_insert AFTER INSERT ON customers
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.id); END;
    DROP TRIGGER segment_dirty_customer_update;
    CREATE TRIGGER segment_dirty_customer_update AFTER UPDATE ON customers
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.id); END;
    DROP TRIGGER segment_dirty_tag_insert;
    CREATE TRIGGER segment_dirty_tag_insert AFTER INSERT ON tags
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    DROP TRIGGER segment_dirty_tag_delete;
    CREATE TRIGGER segment_dirty_tag_delete AFTER DELETE ON tags
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = OLD.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT OLD.shop_id, OLD.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = OLD.shop_id AND customer_id = OLD.customer_id); END;
    DROP TRIGGER segment_dirty_tag_update;
    CREATE TRIGGER segment_dirty_tag_update AFTER UPDATE ON tags
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    DROP TRIGGER segment_dirty_score_insert;
    CREATE TRIGGER segment_dirty_score_insert AFTER INSERT ON scores
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    DROP TRIGGER segment_dirty_score_update;
    CREATE TRIGGER segment_dirty_score_update AFTER UPDATE ON scores
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    DROP TRIGGER segment_dirty_score_delete;
    CREATE TRIGGER segment_dirty_score_delete AFTER DELETE ON scores
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = OLD.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT OLD.shop_id, OLD.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = OLD.shop_id AND customer_id = OLD.customer_id); END;
    DROP TRIGGER segment_dirty_points;
    CREATE TRIGGER segment_dirty_points AFTER INSERT ON points_ledger
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    DROP TRIGGER segment_dirty_behaviour;
    CREATE TRIGGER segment_dirty_behaviour AFTER INSERT ON behaviours
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    DROP TRIGGER segment_dirty_order;
    CREATE TRIGGER segment_dirty_order AFTER INSERT ON orders
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    DROP TRIGGER segment_dirty_order_update;
    CREATE TRIGGER segment_dirty_order_update AFTER UPDATE ON orders
    WHEN EXISTS (SELECT 1 FROM segments WHERE shop_id = NEW.shop_id AND deleted_at IS NULL)
    BEGIN INSERT INTO segment_dirty (shop_id, customer_id) SELECT NEW.shop_id, NEW.customer_id
      WHERE NOT EXISTS (SELECT 1 FROM segment_dirty WHERE shop_id = NEW.shop_id AND customer_id = NEW.customer_id); END;
    "#,
    ),
    // 11: each shop's events have positions of their own (1, 2, 3 …), which is what the API
    // shows and takes: `seq` is global, and its gaps told a shop how many events the others
    // wrote. `seq` stays the bus's and the journeys' cursor. Existing events are numbered in
    // their order. Messages remember which variables a journey filled from personal data,
    // to be masked for keys without `pii:read`.
    //
    // This migration was first released as one `UPDATE … ROW_NUMBER() OVER (PARTITION BY
    // shop_id ORDER BY seq)` over the whole table: one transaction that rewrote every event
    // (at 40 million events a WAL the size of the table and minutes of start-up, begun again
    // from nothing when stopped). It is now `number_events_per_shop`, which ends in the same
    // column, index and positions; a database that ran the first text is at version 11 and
    // is not migrated again, so changing the text rather than adding a migration loses
    // nothing, and a database at 10 never takes the single transaction.
    Migration::Batched(number_events_per_shop),
    // 12: the outbox is claimed per shop and channel. Its groups and a group's due messages
    // were read from indexes of every due message in due order: beside a campaign of 200,000
    // queued messages every pass read the whole backlog twice (0.25 s to list the groups, 0.1 s
    // to claim another shop's five). These indexes hold each group's messages together, in the
    // order they fall due; nothing else read the old ones.
    Migration::Sql(
        r#"
    DROP INDEX messages_queued;
    DROP INDEX messages_sending;
    CREATE INDEX messages_group_queued ON messages(shop_id, channel, next_attempt_at) WHERE status = 'queued';
    CREATE INDEX messages_group_sending ON messages(shop_id, channel, lease_until) WHERE status = 'sending';
    "#,
    ),
    // 13: a segment's rank (`top_percent`, `bottom_percent`) reads the threshold as the k-th
    // value of a model in the shop; `scores_shop_model` holds the label before the value, so
    // every check sorted all of the model's values (0.1 s at 200,000 scores, paid per customer
    // by journey conditions in the writer). In value order the threshold is a seek and k steps.
    Migration::Sql(
        r#"
    CREATE INDEX scores_shop_model_value ON scores(shop_id, model, value);
    "#,
    ),
    // 14: customers whose data segments read changed are marked by the core's writers
    // (ingest, merges, tags, the ledger, plugins' scores and tiers) through
    // `SegmentMarks::customer_changed`, once per customer of an ingested batch, rather than by
    // triggers firing on every row written: side effects are explicit calls of the core.
    Migration::Sql(
        r#"
    DROP TRIGGER segment_dirty_customer_insert;
    DROP TRIGGER segment_dirty_customer_update;
    DROP TRIGGER segment_dirty_tag_insert;
    DROP TRIGGER segment_dirty_tag_delete;
    DROP TRIGGER segment_dirty_tag_update;
    DROP TRIGGER segment_dirty_score_insert;
    DROP TRIGGER segment_dirty_score_update;
    DROP TRIGGER segment_dirty_score_delete;
    DROP TRIGGER segment_dirty_points;
    DROP TRIGGER segment_dirty_behaviour;
    DROP TRIGGER segment_dirty_order;
    DROP TRIGGER segment_dirty_order_update;
    "#,
    ),
    // 15: leases on a shop's work (`kith_core::ports::Leases`), for kernels sharing one
    // database: a plugin's deliveries and run batches in a shop held by one process at a time,
    // each lease running out by itself at `until` (Unix ms) if its holder dies.
    Migration::Sql(
        r#"
    CREATE TABLE leases (
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        work TEXT NOT NULL,
        holder TEXT NOT NULL,
        until INTEGER NOT NULL,
        PRIMARY KEY (shop_id, work)
    );
    "#,
    ),
    // 16: console users (people who sign in to the merchant console, each in one shop with a
    // role) and their sessions. A login is unique across the kernel; only hashes are kept: the
    // password's argon2id PHC string, SHA-256 of a session's and of an invitation's token.
    // AUTOINCREMENT: a removed user's id (and `user:<id>` in the audit log) is never reused.
    // API keys record who created them, so that a removed user's keys are revoked with them.
    Migration::Sql(
        r#"
    ALTER TABLE api_keys ADD COLUMN created_by TEXT;
    CREATE TABLE console_users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        login TEXT NOT NULL UNIQUE,
        name TEXT,
        role TEXT NOT NULL,
        password_hash TEXT,
        failed_sign_ins INTEGER NOT NULL DEFAULT 0,
        locked_until INTEGER,
        invite_hash BLOB UNIQUE,
        invite_expires_at INTEGER,
        created_at INTEGER NOT NULL,
        last_sign_in_at INTEGER
    );
    CREATE INDEX console_users_shop ON console_users(shop_id, created_at);
    CREATE TABLE console_sessions (
        token_hash BLOB PRIMARY KEY,
        shop_id INTEGER NOT NULL REFERENCES shops(id),
        user_id INTEGER NOT NULL REFERENCES console_users(id),
        csrf_token TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX console_sessions_user ON console_sessions(shop_id, user_id);
    "#,
    ),
];

/// How [`number_events_per_shop`] splits its work.
pub(crate) struct Batching {
    /// Events numbered in one transaction.
    pub(crate) events: usize,
    /// Stop with an error after this many committed batches, as a killed process would
    /// (tests of resuming).
    pub(crate) stop_after: Option<usize>,
}

impl Batching {
    /// 200,000 events of ~300 bytes are ~60 MB of pages a transaction: the WAL stays that
    /// large while the table is numbered, and a stopped upgrade loses at most one batch.
    pub(crate) const DEFAULT: Batching = Batching { events: 200_000, stop_after: None };
}

/// Where a numbering in progress stands: events up to `through_seq` have their position.
/// The table exists only while migration 11 runs.
const PROGRESS_TABLE: &str = "events_position_upgrade";

/// Migration 11: give the events of each shop positions 1, 2, 3 … in `seq` order, in
/// transactions of `batching.events` events. The progress is kept in the database, so that a
/// stopped upgrade resumes after its last committed batch. The unique index comes last, built
/// once over numbered rows: created first, every batch would also rewrite its entries.
fn number_events_per_shop(conn: &mut Connection, version: i64, batching: &Batching) -> Result<()> {
    {
        // Immediate: a second process upgrading the same file waits here for the first's
        // batch (busy timeout) instead of failing on a read lock it cannot upgrade.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if applied(&tx, version)? {
            return Ok(());
        }
        let started: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)", [PROGRESS_TABLE], |r| r.get(0))?;
        if !started {
            tx.execute_batch(&format!(
                "ALTER TABLE events ADD COLUMN position INTEGER;
                 CREATE TABLE {PROGRESS_TABLE} (through_seq INTEGER NOT NULL);
                 INSERT INTO {PROGRESS_TABLE} (through_seq) VALUES (0);"
            ))?;
        }
        tx.commit()?;
    }
    let last_seq: i64 = conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM events", [], |r| r.get(0))?;
    let mut numbering = Numbering::default();
    let mut batches = 0;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if applied(&tx, version)? {
            return Ok(());
        }
        let Some(batch_end) = numbering.next_batch(&tx, batching.events)? else {
            break;
        };
        tx.commit()?;
        batches += 1;
        tracing::info!(through_seq = batch_end, last_seq, "numbering events per shop (migration 11)");
        if batching.stop_after == Some(batches) {
            return Err(anyhow::anyhow!("migration 11 stopped after {batches} batches, as asked").into());
        }
    }
    tracing::info!(last_seq, "events numbered per shop; building their index (migration 11)");
    // The index's sort holds an entry of every event, in memory under the connection's
    // `temp_store = MEMORY`: 1.9 GB at 40 million events. In a temporary file it stays within
    // the page cache's size (SQLite's temporary directory needs that much free space).
    let temp_store: i64 = conn.query_row("PRAGMA temp_store", [], |r| r.get(0))?;
    conn.pragma_update(None, "temp_store", "FILE")?;
    let finished = (|| -> Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if applied(&tx, version)? {
            return Ok(());
        }
        // Events an older kith wrote since the last batch (it knows no positions) are
        // numbered in the transaction that makes positions unique.
        while numbering.next_batch(&tx, batching.events)?.is_some() {}
        tx.execute_batch(&format!(
            "CREATE UNIQUE INDEX events_shop_position ON events(shop_id, position);
             ALTER TABLE messages ADD COLUMN personal_variables TEXT;
             DROP TABLE {PROGRESS_TABLE};"
        ))?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        Ok(())
    })();
    let restored = conn.pragma_update(None, "temp_store", temp_store);
    finished?;
    restored?;
    Ok(())
}

/// Whether the schema is already at `version` or later: another process upgrading the same
/// file got there first.
fn applied(conn: &Connection, version: i64) -> Result<bool> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? >= version)
}

/// Migration 11's numbering: each shop's newest position so far, read once per shop when its
/// first event comes up and carried from batch to batch while the progress is the one this
/// process left (another process numbering the same file moves it, and the carried positions
/// are then read again).
#[derive(Default)]
struct Numbering {
    newest: HashMap<i64, i64>,
    /// The progress this process last wrote.
    through: Option<i64>,
}

impl Numbering {
    /// Number the next `limit` events after the progress, in `tx`; the last seq numbered, or
    /// `None` when every event has its position.
    fn next_batch(&mut self, tx: &rusqlite::Transaction<'_>, limit: usize) -> Result<Option<i64>> {
        let through: i64 = tx.query_row(&format!("SELECT through_seq FROM {PROGRESS_TABLE}"), [], |r| r.get(0))?;
        if self.through != Some(through) {
            self.newest.clear();
        }
        let batch: Vec<(i64, i64)> = tx
            .prepare("SELECT seq, shop_id FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?
            .query_map(params![through, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let Some(&(batch_end, _)) = batch.last() else {
            return Ok(None);
        };
        let mut newest_of = tx.prepare("SELECT position FROM events WHERE shop_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1")?;
        let mut number = tx.prepare("UPDATE events SET position = ?1 WHERE seq = ?2")?;
        for (seq, shop_id) in batch {
            let position = match self.newest.get_mut(&shop_id) {
                Some(position) => position,
                None => {
                    let found: Option<i64> = newest_of.query_row(params![shop_id, through], |r| r.get(0)).optional()?;
                    self.newest.entry(shop_id).or_insert(found.unwrap_or(0))
                }
            };
            *position += 1;
            number.execute(params![*position, seq])?;
        }
        tx.execute(&format!("UPDATE {PROGRESS_TABLE} SET through_seq = ?1"), [batch_end])?;
        self.through = Some(batch_end);
        Ok(Some(batch_end))
    }
}

pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, &Batching::DEFAULT)
}

pub(crate) fn migrate_with(conn: &mut Connection, batching: &Batching) -> Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(
            anyhow::anyhow!("database schema version {current} is newer than this kith ({}); upgrade kith", MIGRATIONS.len()).into()
        );
    }
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = (i + 1) as i64;
        match migration {
            Migration::Sql(sql) => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                if !applied(&tx, version)? {
                    tx.execute_batch(sql)?;
                    tx.pragma_update(None, "user_version", version)?;
                }
                tx.commit()?;
            }
            Migration::Batched(run) => run(conn, version, batching)?,
        }
        tracing::info!(version = i + 1, "applied migration");
    }
    // A newer kith may have upgraded the file further while this one waited for its turn.
    let reached: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if reached > MIGRATIONS.len() {
        return Err(
            anyhow::anyhow!("database schema version {reached} is newer than this kith ({}); upgrade kith", MIGRATIONS.len()).into()
        );
    }
    Ok(())
}

/// The schema version this build migrates to.
pub fn latest_version() -> usize {
    MIGRATIONS.len()
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use rusqlite::TransactionBehavior;

    use super::{Batching, MIGRATIONS, Migration, Numbering, PROGRESS_TABLE, migrate, migrate_with};

    /// Migration 11 as first released: every event numbered in one statement. The batched
    /// migration must end where this one ends.
    const RELEASED_11: &str = "
        ALTER TABLE events ADD COLUMN position INTEGER;
        UPDATE events SET position = numbered.n
        FROM (SELECT seq, ROW_NUMBER() OVER (PARTITION BY shop_id ORDER BY seq) AS n FROM events) AS numbered
        WHERE numbered.seq = events.seq;
        CREATE UNIQUE INDEX events_shop_position ON events(shop_id, position);
        ALTER TABLE messages ADD COLUMN personal_variables TEXT;";

    /// A database at version 10 holding events of four shops (one of them has none), their
    /// turns uneven and their `seq` with gaps, as rolled-back appends leave them.
    fn version_10() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for migration in &MIGRATIONS[..10] {
            let Migration::Sql(sql) = migration else { panic!("migrations 1 to 10 are SQL") };
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", 10).unwrap();
        conn.execute_batch(
            "INSERT INTO shops (id, name, time_zone, currency, region, created_at) VALUES
             (1, 'A', 'UTC', 'CNY', 'CN', 0), (2, 'B', 'UTC', 'CNY', 'CN', 0), (3, 'C', 'UTC', 'CNY', 'CN', 0), (4, 'D', 'UTC', 'CNY', 'CN', 0);",
        )
        .unwrap();
        let mut insert =
            conn.prepare("INSERT INTO events (seq, shop_id, type, payload, created_at) VALUES (?1, ?2, 'x', '{}', 0)").unwrap();
        let mut seq = 0;
        for i in 0..97 {
            seq += if i % 13 == 5 { 4 } else { 1 };
            let shop = match i % 10 {
                0..=5 => 1,
                6..=8 => 2,
                _ => 3,
            };
            insert.execute([seq, shop]).unwrap();
        }
        drop(insert);
        conn
    }

    /// Every event's (seq, shop, position), in `seq` order.
    fn positions(conn: &Connection) -> Vec<(i64, i64, Option<i64>)> {
        conn.prepare("SELECT seq, shop_id, position FROM events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The schema as SQLite keeps it, and the version.
    fn schema(conn: &Connection) -> (Vec<(String, String, Option<String>)>, i64) {
        let objects = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        (objects, conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap())
    }

    /// [`released`] brought up to the latest version: where every upgrade from 10 must end.
    fn released_and_migrated() -> Connection {
        let mut conn = released();
        migrate(&mut conn).unwrap();
        conn
    }

    /// What the released migration 11 makes of [`version_10`].
    fn released() -> Connection {
        let conn = version_10();
        conn.execute_batch(RELEASED_11).unwrap();
        conn.pragma_update(None, "user_version", 11).unwrap();
        conn
    }

    /// The triggers that marked changed customers for segments are gone from an upgraded
    /// database, as from a new one: the core's writers mark customers themselves.
    #[test]
    fn an_upgraded_database_keeps_no_trigger() {
        let triggers = |conn: &Connection| -> Vec<String> {
            let mut statement = conn.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name").unwrap();
            statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
        };
        let mut conn = version_10();
        assert_eq!(triggers(&conn).len(), 12, "version 10 had the twelve segment-dirty triggers: {:?}", triggers(&conn));
        migrate(&mut conn).unwrap();
        assert_eq!(triggers(&conn), Vec::<String>::new());
        let mut new = Connection::open_in_memory().unwrap();
        migrate(&mut new).unwrap();
        assert_eq!(triggers(&new), Vec::<String>::new());
    }

    /// A database at version 10 ends with the released migration's column, index and
    /// positions: each shop's events numbered 1, 2, 3 … in `seq` order.
    #[test]
    fn a_version_10_database_is_numbered_as_the_released_migration_numbered_it() {
        let reference = released_and_migrated();
        for events in [1, 7, 1000] {
            let mut conn = version_10();
            migrate_with(&mut conn, &Batching { events, stop_after: None }).unwrap();
            assert_eq!(positions(&conn), positions(&reference), "batches of {events}");
            assert_eq!(schema(&conn), schema(&reference), "batches of {events}");
        }
        let positions = positions(&reference);
        assert_eq!(
            &positions[..7],
            &[(1, 1, Some(1)), (2, 1, Some(2)), (3, 1, Some(3)), (4, 1, Some(4)), (5, 1, Some(5)), (9, 1, Some(6)), (10, 2, Some(1))]
        );
        assert_eq!(positions.iter().filter(|p| p.1 == 3).map(|p| p.2.unwrap()).collect::<Vec<_>>(), (1..=9).collect::<Vec<_>>());
    }

    /// An upgrade stopped after some committed batches resumes after the last of them and ends
    /// where an upgrade in one go ends; what it committed before stopping stays.
    #[test]
    fn a_stopped_upgrade_resumes_after_its_last_batch() {
        let mut conn = version_10();
        let error = migrate_with(&mut conn, &Batching { events: 10, stop_after: Some(3) }).unwrap_err();
        assert!(error.to_string().contains("stopped after 3 batches"), "{error}");
        assert_eq!(schema(&conn).1, 10);
        let numbered = positions(&conn).iter().filter(|p| p.2.is_some()).count();
        assert_eq!(numbered, 30);
        let through: i64 = conn.query_row(&format!("SELECT through_seq FROM {PROGRESS_TABLE}"), [], |r| r.get(0)).unwrap();
        assert_eq!(through, positions(&conn)[29].0);
        // Stopped again inside the next run, then left to finish.
        migrate_with(&mut conn, &Batching { events: 7, stop_after: Some(2) }).unwrap_err();
        assert_eq!(positions(&conn).iter().filter(|p| p.2.is_some()).count(), 44);
        migrate_with(&mut conn, &Batching { events: 7, stop_after: None }).unwrap();
        let reference = released_and_migrated();
        assert_eq!(positions(&conn), positions(&reference));
        assert_eq!(schema(&conn), schema(&reference));
    }

    /// Events an older kith writes into a file whose upgrade was stopped (it knows no positions)
    /// are numbered when the upgrade resumes, after the others of their shop.
    #[test]
    fn events_an_older_kith_wrote_during_the_upgrade_are_numbered() {
        let mut conn = version_10();
        // 97 events in batches of 10: the tenth batch numbers the last of them.
        migrate_with(&mut conn, &Batching { events: 10, stop_after: Some(10) }).unwrap_err();
        assert!(positions(&conn).iter().all(|p| p.2.is_some()));
        conn.execute_batch(
            "INSERT INTO events (shop_id, type, payload, created_at) VALUES (1, 'x', '{}', 0), (4, 'x', '{}', 0), (1, 'x', '{}', 0);",
        )
        .unwrap();
        migrate_with(&mut conn, &Batching { events: 10, stop_after: None }).unwrap();
        let last: Vec<(i64, Option<i64>)> = positions(&conn).iter().rev().take(3).map(|p| (p.1, p.2)).collect();
        assert_eq!(last, vec![(1, Some(62)), (4, Some(1)), (1, Some(61))]);
        assert_eq!(schema(&conn).1, MIGRATIONS.len() as i64);
    }

    /// Two processes opening the same file at version 10 upgrade it together: each waits for
    /// the other's batch, neither numbers an event twice or carries a stale position, and the
    /// second to finish finds the work done.
    #[test]
    fn two_processes_upgrading_one_file_end_as_one_would() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v10.db");
        version_10().execute("VACUUM INTO ?1", [path.to_str().unwrap()]).unwrap();
        let open = |path: &std::path::Path| {
            let conn = Connection::open(path).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn
        };
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let mut conn = open(&path);
                std::thread::spawn(move || migrate_with(&mut conn, &Batching { events: 3, stop_after: None }).map_err(|e| e.to_string()))
            })
            .collect();
        for worker in workers {
            worker.join().unwrap().unwrap();
        }
        let conn = open(&path);
        let reference = released_and_migrated();
        assert_eq!(positions(&conn), positions(&reference));
        assert_eq!(schema(&conn), schema(&reference));

        // Their batches taking turns, as they may: each finds the other's progress and reads
        // the positions it carried again.
        let path = dir.path().join("turns.db");
        version_10().execute("VACUUM INTO ?1", [path.to_str().unwrap()]).unwrap();
        let (mut a, mut b) = (open(&path), open(&path));
        migrate_with(&mut a, &Batching { events: 5, stop_after: Some(1) }).unwrap_err();
        let (mut turn_a, mut turn_b) = (Numbering::default(), Numbering::default());
        for _ in 0..4 {
            for (conn, numbering) in [(&mut a, &mut turn_a), (&mut b, &mut turn_b)] {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
                numbering.next_batch(&tx, 5).unwrap().unwrap();
                tx.commit().unwrap();
            }
        }
        migrate_with(&mut a, &Batching { events: 5, stop_after: None }).unwrap();
        assert_eq!(positions(&a), positions(&reference));
    }

    /// A rank's threshold (`segments::rank_test`: the k-th value of a model in the shop, from
    /// the top or the bottom) walks the value index, with no sort of the model's values.
    #[test]
    fn a_ranks_threshold_is_read_in_value_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for order in ["DESC", "ASC"] {
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT r.value FROM scores r WHERE r.shop_id = ?1 AND r.model = ?2
                 ORDER BY r.value {order} LIMIT 1 OFFSET (SELECT (COUNT(*) * ?3 + 99) / 100 - 1 FROM scores n WHERE n.shop_id = ?1 AND n.model = ?2)"
            );
            let plan: Vec<String> = conn
                .prepare(&sql)
                .unwrap()
                .query_map(rusqlite::params![1, "predict.clv", 20], |r| r.get(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let text = plan.join("\n");
            assert!(!text.contains("TEMP B-TREE"), "{text}");
            assert!(text.contains("scores_shop_model_value"), "{text}");
        }
    }

    /// A database the released migration 11 already numbered is not numbered again.
    #[test]
    fn a_database_at_version_11_is_left_alone() {
        let mut conn = released();
        // Positions no numbering would give: a migration that ran again would change them.
        conn.execute("UPDATE events SET position = position + 1000 WHERE shop_id = 2", []).unwrap();
        let before = positions(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(positions(&conn), before);
        // Only what came after 11 applied.
        let reference = released();
        for migration in &MIGRATIONS[11..] {
            let Migration::Sql(sql) = migration else { panic!("migrations after 11 are SQL") };
            reference.execute_batch(sql).unwrap();
        }
        reference.pragma_update(None, "user_version", MIGRATIONS.len()).unwrap();
        assert_eq!(schema(&conn), schema(&reference));
    }

    /// Events appended after the upgrade continue each shop's numbering.
    #[test]
    fn new_events_continue_each_shops_positions() {
        let mut conn = version_10();
        migrate_with(&mut conn, &Batching { events: 6, stop_after: None }).unwrap();
        let now = chrono::Utc::now();
        let last = |conn: &Connection, shop: i64| -> i64 {
            conn.query_row("SELECT MAX(position) FROM events WHERE shop_id = ?1", [shop], |r| r.get::<_, Option<i64>>(0))
                .unwrap()
                .unwrap_or(0)
        };
        let before: Vec<i64> = (1..=4).map(|shop| last(&conn, shop)).collect();
        assert_eq!(before, vec![60, 28, 9, 0]);
        for shop in [4, 2, 1, 2, 3, 4] {
            let seq = crate::events::append(&conn, shop, "x", None, &serde_json::json!({}), now).unwrap();
            let position: i64 = conn.query_row("SELECT position FROM events WHERE seq = ?1", [seq], |r| r.get(0)).unwrap();
            assert_eq!(position, last(&conn, shop));
        }
        assert_eq!((1..=4).map(|shop| last(&conn, shop)).collect::<Vec<_>>(), vec![61, 30, 10, 2]);
    }

    /// The indexes of the `messages` table, with their SQL.
    fn message_indexes(conn: &Connection) -> Vec<(String, String)> {
        conn.prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// A database at version 11 with messages in the outbox takes the outbox's group indexes in
    /// place of the old ones, its messages untouched, and ends with the schema of a new database.
    #[test]
    fn a_database_at_version_11_takes_the_outboxs_group_indexes() {
        let mut conn = released();
        conn.execute_batch(
            "INSERT INTO customers (id, shop_id, created_at, updated_at) VALUES (1, 1, 0, 0);
             INSERT INTO messages (shop_id, customer_id, channel, template, variables, status, next_attempt_at, lease_until, source,
                                   public_id, idempotency_key, created_at, updated_at) VALUES
               (1, 1, 'sms', 'T', '{}', 'queued', 5, NULL, 'test', 'm1', 'k1', 0, 0),
               (1, 1, 'sms', 'T', '{}', 'sending', NULL, 9, 'test', 'm2', 'k2', 0, 0),
               (1, 1, 'email', 'T', '{}', 'sent', NULL, NULL, 'test', 'm3', 'k3', 0, 0);",
        )
        .unwrap();
        let names = |conn: &Connection| message_indexes(conn).into_iter().map(|(name, _)| name).collect::<Vec<_>>();
        assert!(names(&conn).contains(&"messages_queued".to_string()));
        let rows = |conn: &Connection| -> Vec<(String, String, Option<i64>, Option<i64>)> {
            conn.prepare("SELECT public_id, status, next_attempt_at, lease_until FROM messages ORDER BY id")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let before = rows(&conn);
        migrate(&mut conn).unwrap();
        assert_eq!(schema(&conn).1, MIGRATIONS.len() as i64);
        assert_eq!(rows(&conn), before);
        let indexes = names(&conn);
        assert!(indexes.contains(&"messages_group_queued".to_string()) && indexes.contains(&"messages_group_sending".to_string()));
        assert!(!indexes.contains(&"messages_queued".to_string()) && !indexes.contains(&"messages_sending".to_string()));
        let mut new = Connection::open_in_memory().unwrap();
        migrate(&mut new).unwrap();
        assert_eq!(message_indexes(&conn), message_indexes(&new));
        // The group index holds the queued message, and only it.
        let queued: Vec<i64> = conn
            .prepare("SELECT next_attempt_at FROM messages INDEXED BY messages_group_queued WHERE status = 'queued' AND shop_id = 1")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(queued, [5]);
    }
}
