#!/usr/bin/env python3
"""
bench/client_pipeline.py - the client-side baseline of `make bench`: the
orders pipeline written the way a typical Python ETL job writes it, outside
the database.

  extract    a psycopg2 server-side (named) cursor over the source, rows
             changed since the stored high watermark, ORDER BY updated_at,
             fetched in batches of 10,000 as dicts
  transform  in Python, row by row: order_date, total_amount, currency
             upper-cased with default 'USD', status lower-cased,
             order_month, is_high_value, plus a SHA-256 hash of the key
             (compute_record_hash)
  load       psycopg2.extras.execute_values: INSERT ... ON CONFLICT (key)
             DO UPDATE, one page of 10,000 rows per statement
  state      the new high watermark, stored with the load in one transaction
             (update_extraction_state), so a failed run leaves nothing
             behind

It produces the same rows as etl_ext's pipeline 'orders' (bench/bench.py
checks that, row for row), with the key hash in _record_hash instead of
etl_ext's row hash.

Standalone:  python3 bench/client_pipeline.py "host=... port=... dbname=..."
"""

import hashlib
import json
import sys
import time

import psycopg2
import psycopg2.extras

BATCH_SIZE = 10_000
PIPELINE = "orders"
KEY_COLUMNS = ["order_id"]
COLUMNS = [
    "order_id", "customer_id", "order_date", "total_amount", "currency",
    "status", "order_month", "is_high_value", "_record_hash",
]


def compute_record_hash(record, key_columns):
    """A deterministic key hash: SHA-256 of the key as JSON."""
    key_values = {k: record[k] for k in sorted(key_columns)}
    key_string = json.dumps(key_values, sort_keys=True, default=str)
    return hashlib.sha256(key_string.encode()).hexdigest()


def transform(record):
    """The transform of one source row (a dict).

    The currency's default is applied to NULL (record.get('currency',
    'USD') would keep a None whose key is there), as the SQL transform
    does.
    """
    total = float(record["total"])
    return {
        "order_id": record["order_id"],
        "customer_id": record["customer_id"],
        "order_date": record["created_at"].date(),
        "total_amount": total,
        "currency": (record["currency"] or "USD").upper(),
        "status": record["status"].lower(),
        "order_month": record["created_at"].strftime("%Y-%m"),
        "is_high_value": total > 1000,
    }


def run_pipeline(dsn, source="src.orders", target="dw.fact_orders_client",
                 state_table="bench.client_state"):
    """Runs one increment; returns the number of rows loaded.

    The connections use TimeZone UTC, so that created_at.date() is the UTC
    date, as in the SQL transform.
    """
    reader = psycopg2.connect(dsn, options="-c TimeZone=UTC")
    writer = psycopg2.connect(dsn, options="-c TimeZone=UTC")
    try:
        wcur = writer.cursor()
        wcur.execute(f"SELECT high_watermark FROM {state_table} WHERE pipeline = %s",
                     (PIPELINE,))
        row = wcur.fetchone()
        high_watermark = row[0] if row else None

        # extract: a server-side cursor, batches of BATCH_SIZE rows
        query = f"SELECT * FROM {source}"
        params = ()
        if high_watermark is not None:
            query += " WHERE updated_at > %s"
            params = (high_watermark,)
        query += " ORDER BY updated_at"
        rcur = reader.cursor(name="extract_orders",
                             cursor_factory=psycopg2.extras.RealDictCursor)
        rcur.itersize = BATCH_SIZE
        rcur.execute(query, params)

        upsert = (
            f"INSERT INTO {target} ({', '.join(COLUMNS)}) VALUES %s "
            "ON CONFLICT (order_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
        )
        loaded = 0
        max_watermark = high_watermark
        while True:
            records = rcur.fetchmany(BATCH_SIZE)
            if not records:
                break
            rows = []
            for record in records:
                transformed = transform(record)
                transformed["_record_hash"] = compute_record_hash(transformed, KEY_COLUMNS)
                rows.append(tuple(transformed[c] for c in COLUMNS))
                if max_watermark is None or record["updated_at"] > max_watermark:
                    max_watermark = record["updated_at"]
            psycopg2.extras.execute_values(wcur, upsert, rows, page_size=BATCH_SIZE)
            loaded += len(rows)
        rcur.close()
        reader.commit()

        # state: the new high watermark, committed with the load
        if max_watermark is not None:
            wcur.execute(
                f"INSERT INTO {state_table} (pipeline, high_watermark, rows_extracted, last_run) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT (pipeline) DO UPDATE SET "
                "high_watermark = EXCLUDED.high_watermark, "
                f"rows_extracted = {state_table}.rows_extracted + EXCLUDED.rows_extracted, "
                "last_run = EXCLUDED.last_run",
                (PIPELINE, max_watermark, loaded))
        writer.commit()
        return loaded
    finally:
        reader.close()
        writer.close()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    started = time.perf_counter()
    n = run_pipeline(sys.argv[1])
    print(f"{n} rows loaded in {time.perf_counter() - started:.3f} s")
