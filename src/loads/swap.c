/*-------------------------------------------------------------------------
 *
 * swap.c
 *	  Load partition_swap: the batch is applied to a partitioned target by
 *	  rebuilding each partition it touches in a staging table and swapping
 *	  the staging tables in with DROP / ATTACH, in the run's transaction.
 *
 *	  Semantics are those of load merge, partition by partition: a batch row
 *	  replaces the target row with its key (wherever that row is: a row
 *	  whose partition key changed moves), a new key is added, and every
 *	  other row of a rebuilt partition is copied as it is.  Unchanged batch
 *	  rows (same row hash, or same columns) are not written, and a
 *	  partition is rebuilt only when the batch has a new or changed row for
 *	  it (or moves a row out of it): a re-run over unchanged rows swaps
 *	  nothing.  Partitions not touched keep their OID and their rows.
 *
 *	  Two phases:
 *
 *	  A (etl_swap_load, once per load call: the whole batch, or one chunk of
 *		it during bad-row isolation).  One read-only join classifies the
 *		batch against the target (new, changed, unchanged).  The new and
 *		changed rows go into the run's batch table, pg_temp.etl_batch_<run
 *		id>: the target's loaded columns with its NOT NULL and CHECK
 *		constraints (and a unique index on the key when the target has
 *		one), so that a row the target would refuse fails here, where
 *		bad-row isolation can make it a dead letter; with each row its
 *		routing: the partition its key is in now (tableoid), the partition
 *		it goes to (its partition key value placed among the bounds of the
 *		target with width_bucket(), a binary search; else the DEFAULT
 *		partition) or, when there is none, the gap between bounds it falls
 *		in.  A row no partition takes and for which none can be created
 *		fails with 23514, as PostgreSQL's own routing does: never dropped.
 *
 *	  B (etl_swap_finish, once, after the whole batch is in).  For every
 *		partition the batch table's rows go to or move out of, and every
 *		partition to create: a staging table in the partition's schema,
 *		CREATE TABLE (LIKE <partition, or the target for a new one>
 *		INCLUDING ALL EXCLUDING INDEXES EXCLUDING IDENTITY) with a CHECK
 *		constraint that is the partition's constraint as PostgreSQL
 *		deparses it; the partition's rows whose key is not in the batch
 *		table, then the batch table's rows for it (a new row's identity
 *		columns from the target's sequences); its indexes, primary key and
 *		unique constraints from the partition's (or the target's)
 *		definitions, built once the rows are in; its owner, grants and
 *		comment; ANALYZE.  Then the swap: DROP every partition replaced,
 *		give the staging tables and their indexes the replaced ones' names,
 *		ATTACH every staging table (the DEFAULT partition last), drop the
 *		CHECK constraint.  ATTACH finds the CHECK constraint implies the
 *		partition constraint and does not scan the table, finds an index
 *		matching each of the target's partitioned indexes and attaches it,
 *		and clones the target's foreign keys and validates them.
 *		Everything happens in the attempt's subtransaction: an error
 *		anywhere (a lock timeout, a dependent view) rolls it all back,
 *		staging tables included.  Before anything is built, the target is
 *		checked again for what a swap would break, and the swap for the
 *		lock slots it needs (swap_guard.c).
 *
 *	  New partitions.  Without a DEFAULT partition, a row no partition
 *	  takes gets a new one: list, FOR VALUES IN (its value); range, the
 *	  period of options.partition_interval its value lies in, cut where
 *	  existing partitions begin or end.  Periods count from 1970-01-01
 *	  00:00 (UTC for timestamptz): an interval of whole months ('1 month',
 *	  '3 months', '1 year') starts on the first of a month (January 1970,
 *	  so quarters and years are calendar ones); an interval without months
 *	  ('1 day', '6 hours', '7 days') is a fixed width (a day is 24 hours);
 *	  integer keys take a number ("1000": [0, 1000), [1000, 2000) ...).
 *	  With a DEFAULT partition, such rows go there and nothing is created
 *	  (as an INSERT into the target would place them); range partitions
 *	  never take NULL, which only a DEFAULT partition holds.
 *
 *	  Locking.  Before the first row enters the batch table the target is
 *	  locked SHARE ROW EXCLUSIVE (ONLY): no one writes it through the
 *	  parent, changes its partitions or runs another swap on it until the
 *	  run's transaction ends; readers go on.  Phase B locks the partitions
 *	  it rebuilds SHARE (no writer of them directly) and reads them with a
 *	  snapshot taken after that lock.  DROP takes ACCESS EXCLUSIVE on the
 *	  target, ATTACH SHARE UPDATE EXCLUSIVE: from the first DROP to the end
 *	  of the transaction no one reads the target.  A run that only creates
 *	  partitions drops nothing and never blocks readers.  A table the
 *	  target references by a foreign key is locked by ATTACH only (SHARE
 *	  ROW EXCLUSIVE: its writers wait, its readers do not).  Waiting for a
 *	  reader is bounded by the caller's lock_timeout: 55P03 is transient,
 *	  the attempt is rolled back and retried per the pipeline's retry
 *	  policy.
 *
 *	  Ownership.  ATTACH and DROP need the owner of the target and
 *	  of the partitions: the pipeline owner must be (or be a member of) the
 *	  target's owner (checked at definition) and of the partitions rebuilt.
 *	  The run executes as the pipeline owner in a security-restricted
 *	  operation, which allows this DDL (only the batch table, a temporary
 *	  one, is created with the restriction lifted, as the stage is: the
 *	  statement runs no user code).
 *
 * IDENTIFICATION
 *	  src/loads/swap.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"

#include "base/spi_util.h"
#include "loads/counts.h"
#include "loads/swap.h"
#include "loads/swap_build.h"
#include "loads/swap_key.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"
#include "sql/deparse_swap.h"
#include "sql/run_state.h"

/*
 * unroutable fails the load for a row of the batch no partition takes
 * (value: its partition key value as text, NULL for NULL), with 23514 as
 * PostgreSQL's own routing would: bad-row isolation makes it a dead letter
 * (or the run fails above its error threshold).
 */
static void
unroutable(EtlRun *run, EtlSwapKey *k, const char *value)
{
	const char *detail;
	const char *hint;

	if (value == NULL && k->strategy == PARTITION_STRATEGY_RANGE)
	{
		detail = "A range partition never holds NULL, and the target has no "
				 "DEFAULT partition.";
		hint = "Add a DEFAULT partition, or keep NULL out of the partition "
			   "key in the transform.";
	}
	else if (value == NULL)
	{
		detail = "No partition of the target is FOR VALUES IN (NULL), and it "
				 "has no DEFAULT partition.";
		hint = "Add a partition for NULL or a DEFAULT partition, or keep NULL "
			   "out of the partition key in the transform.";
	}
	else
	{
		detail = "No partition's range holds the value, the target has no "
				 "DEFAULT partition, and the pipeline has no "
				 "options.partition_interval to create one.";
		hint = "Create the partition, add a DEFAULT partition, or let the "
			   "pipeline create partitions: etl_alter_pipeline(..., options "
			   "=> '{\"partition_interval\": \"1 month\"}').";
	}
	ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION),
					errmsg("no partition of target %s for %s = %s",
						   run->p->target, k->column, value ? value : "NULL"),
					errdetail("%s", detail), errhint("%s", hint)));
}

/*
 * target_is_empty tells whether the target had no row when this attempt's
 * load began (asked once per attempt, as load.c does).
 */
static bool
target_is_empty(EtlRun *run)
{
	if (run->target_empty < 0)
		run->target_empty =
			etl_spi_exec(etl_deparse_target_probe(etl_batch_sql(run)), NULL,
						 SPI_OK_SELECT, run->snapshot) == 0;
	return run->target_empty == 1;
}

/*
 * etl_swap_load is load partition_swap's part of etl_load(): phase A for
 * the run's batch (or, when staged, rows rn_lo .. rn_hi of it), then, for
 * the whole batch, phase B.  Staged chunks leave phase B to
 * etl_swap_finish() once all are in.  Returns the counts in *c (inserted:
 * new keys, updated: changed rows, unchanged: the rest).  Runs as the
 * pipeline owner; errors propagate (the caller's subtransaction rolls back
 * what was written, the batch table and staging tables included).
 */
void
etl_swap_load(EtlRun *run, EtlLoadCounts *c)
{
	bool empty = target_is_empty(run);
	EtlSwapKey k;
	EtlSwapRoute r;
	EtlArgs args;
	Relation rel;
	char *batch;
	bool isnull;

	memset(c, 0, sizeof(*c));
	if (!empty)
	{
		etl_run_args(run, &args);
		etl_spi_query_parallel(etl_deparse_classify(etl_batch_sql(run)), &args,
							   run->snapshot);
		c->batch = etl_spi_int64(0, 0, 0);
		c->inserted = etl_spi_int64(0, 1, 0);
		c->updated = etl_spi_int64(0, 2, 0);
		c->unchanged = c->batch - c->inserted - c->updated;
	}

	if (empty || c->inserted + c->updated > 0)
	{
		batch = etl_swap_batch(run, true);
		etl_spi_exec(etl_deparse_lock(run->target_sql, "SHARE ROW EXCLUSIVE"),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		rel = table_open(run->target_relid, AccessShareLock);
		etl_swap_key(run->p, rel, &k);
		etl_swap_route(rel, &k, &r);
		table_close(rel, AccessShareLock);

		etl_run_args(run, &args);
		etl_swap_route_args(&k, &r, &args);
		etl_spi_exec(
			etl_deparse_swap_fill(etl_batch_sql(run), batch, &k, !empty,
								  k.strategy == PARTITION_STRATEGY_LIST ||
									  k.period != ETL_PERIOD_NONE,
								  ETL_NPARAMS + 1),
			&args, SPI_OK_SELECT, run->snapshot);
		if (empty)
			c->batch = c->inserted = etl_spi_int64(0, 0, 0);
		if (DatumGetBool(etl_spi_datum(0, 1, &isnull)))
			unroutable(run, &k, etl_spi_text(0, 2));
	}

	if (run->stage_table == NULL)
		etl_swap_finish(run);
}
