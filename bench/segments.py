"""The segments benchmark's baseline: the same five queries in DuckDB over the
same data, exported from Kith's database as CSV. Loading is not timed; each
query's count and first page (20 ids) are, `runs` times.

usage: segments.py <csv dir> <runs> <JSON: query name -> the "now" in ms Kith evaluated it at>   (prints JSON)
"""

import json
import sys
import time

import duckdb

DAY = 86_400_000


def queries(nows):
    def at(name):
        return nows[name], nows[name] - 30 * DAY

    now, d30 = at("behaviour window")
    behaviour = f"""
            (SELECT COUNT(*) FROM behaviours b WHERE b.customer_id = c.id AND b.kind = 'cart' AND b.category = 'skincare'
                AND b.occurred_at >= {d30} AND b.occurred_at < {now + 1}) >= 1"""
    now, d30 = at("bought A not B in 30 days")
    bought = f"""
            (SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.status <> 'refunded' AND o.paid_at >= {d30}
                AND o.paid_at < {now + 1}
                AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.category = 'skincare')) >= 1
            AND NOT COALESCE((SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id AND o.status <> 'refunded'
                AND o.paid_at >= {d30} AND o.paid_at < {now + 1}
                AND EXISTS (SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.category = 'consumable')) >= 1, false)"""
    now, _ = at("nested and/or/not")
    nested = f"""
            (c.city IN ('杭州', '上海') AND c.order_count >= 2)
            OR NOT COALESCE((({now} - c.last_order_at) // {DAY}) < 180, false)"""
    return {
        "stats only": "c.total_spent >= 50000 AND c.order_count >= 3",
        "tag + RFM group": """
            EXISTS (SELECT 1 FROM tags t WHERE t.customer_id = c.id AND t.tag = 'high-value')
            AND EXISTS (SELECT 1 FROM scores s WHERE s.customer_id = c.id AND s.model = 'rfm'
                AND (s.label = 'important-value' OR (strpos(s.label, '|') > 0 AND split_part(s.label, '|', 1) = 'important-value')))""",
        "behaviour window": behaviour,
        "bought A not B in 30 days": bought,
        "nested and/or/not": nested,
    }


def main():
    folder, runs, nows = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    db = duckdb.connect()
    for table in ["customers", "tags", "scores", "behaviours", "orders", "order_items"]:
        db.execute(f"CREATE TABLE {table} AS SELECT * FROM read_csv_auto('{folder}/{table}.csv', header = true)")
    out = {}
    for name, where in queries(nows).items():
        scoped = f"c.merged_into IS NULL AND ({where})"
        times = []
        count = None
        for _ in range(runs):
            start = time.perf_counter()
            count = db.execute(f"SELECT COUNT(*) FROM customers c WHERE {scoped}").fetchone()[0]
            db.execute(f"SELECT c.id FROM customers c WHERE {scoped} ORDER BY c.id LIMIT 20").fetchall()
            times.append(time.perf_counter() - start)
        out[name] = {"count": count, "seconds": times}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
