/*-------------------------------------------------------------------------
 *
 * run_state.h
 *	  The state of one run of a pipeline, which the stages fill, the
 *	  positional arguments of its statements, and the descriptor of its batch
 *	  that the SQL builders read (sql/batch_sql.h).
 *
 * IDENTIFICATION
 *	  src/sql/run_state.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_RUN_STATE_H
#define ETL_RUN_STATE_H

#include "postgres.h"

#include "utils/snapshot.h"

#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "catalog/runs.h"
#include "sql/batch_sql.h"
#include "sql/columns.h"

/*
 * What a caller other than etl_run() asks of a run: the catch-up and
 * backfill procedures run steps that record their batch in a row of
 * etl.batches committed beforehand, and a backfill step takes a given
 * range [range_from, range_to) without moving the watermark.
 */
typedef struct EtlRunRequest
{
	const char *triggered_by; /* NULL: manual, or schedule under pg_cron */
	const char *range_from;	  /* backfill: inclusive, NULL: none */
	const char *range_to;	  /* backfill: exclusive */
	int64 batch_id;			  /* the step's row of etl.batches, 0: none */
} EtlRunRequest;

typedef struct EtlRun
{
	EtlPipeline *p;
	EtlRunRecord rec;
	EtlRunRequest *req; /* never NULL while running */

	Oid source_relid;
	Oid target_relid;
	char *source_sql; /* quoted, qualified */
	char *target_sql;
	char source_relkind;
	EtlColumnMap *map;

	/* the watermark column and the range of this run */
	Oid wm_type;
	int32 wm_typmod;
	bool has_lo;
	Datum lo;
	bool has_from;
	Datum from;
	bool from_inclusive; /* a backfill range: >= from */
	bool rereads;		 /* from lies before lo: an overlap re-reads */
	bool has_hi;
	Datum hi;
	Oid hi_type;
	bool hi_inclusive;
	bool has_cutoff;
	Datum cutoff;
	bool nothing; /* the range is known to be empty */

	/* one snapshot for the range statistics and the load */
	Snapshot snapshot;

	/* whether the target is empty (etl_target_is_empty()): -1 not known */
	int target_empty;
	bool target_empty_fixed; /* true: an isolated load keeps the answer */

	/*
	 * Staged rows (bad-row isolation, dead-letter replay): the source rows of
	 * the range in a temporary table with row numbers; loads then read rows
	 * rn_lo .. rn_hi of it instead of the source.
	 */
	char *stage_table;	   /* quoted name in pg_temp, NULL: not staged */
	char *stage_columns;   /* the source's columns, quoted, comma list */
	char *stage_columns_s; /* the same, each qualified by etl_s. */
	int64 rn_lo;
	int64 rn_hi;
	bool stage_held_only; /* read the held rows only (isolate.c) */
	bool dedupe;		  /* keep one row per key (load.c) */
	int64 stage_rows;	  /* rows staged (numbered 1 .. stage_rows) */
	List *held_xids;	  /* parts whose locks isolation holds (isolate.c) */

	struct EtlDeadLetters *dead_letters; /* found by this attempt */
	int64 dead_letter_count;   /* how many (transform/deadletter.c) */
	int64 known_rejects;	   /* rows rejected again, pending already */
	int64 repeat_rejects;	   /* of both, snapshot rows of a repeated key */
	List *check_results;	   /* the checks' results of this attempt */
	int64 check_rows;		   /* the batch rows the checks counted */
	StringInfo attempt_errors; /* JSON array of the failed attempts */
	const char *stage;		   /* the stage running or last run */

	/* mode xid: the previous run's snapshot (NULL: none), this run's
	 * watermark */
	char *xid_prev;
	char *xid_cur;
} EtlRun;

extern void etl_run_args(EtlRun *run, EtlArgs *args);
extern const EtlBatchSql *etl_batch_sql(EtlRun *run);
extern void etl_run_resolve_relations(EtlRun *run);

#endif /* ETL_RUN_STATE_H */
