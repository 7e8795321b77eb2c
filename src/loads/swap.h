/*-------------------------------------------------------------------------
 *
 * swap.h
 *	  Load partition_swap: rebuilding the partitions a batch touches and
 *	  swapping them into a partitioned target.
 *
 * IDENTIFICATION
 *	  src/loads/swap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SWAP_H
#define ETL_SWAP_H

#include "postgres.h"

#include "utils/rel.h"

#include "run/run.h"

/*
 * How options.partition_interval cuts the key of a range-partitioned
 * target into the bounds of the partitions etl_ext creates.  A period is
 * numbered by the SQL (etl_deparse_swap_period()), its bounds computed in C
 * (swap.c), both counting from 1970-01-01 00:00 (UTC for timestamptz).
 */
typedef enum EtlSwapPeriod
{
	ETL_PERIOD_NONE,		 /* no interval: nothing is created */
	ETL_PERIOD_INTEGER,		 /* integer key: [k * width, (k + 1) * width) */
	ETL_PERIOD_DAYS,		 /* date key: width days */
	ETL_PERIOD_MICROSECONDS, /* timestamp(tz) key: width microseconds */
	ETL_PERIOD_MONTHS		 /* date or timestamp(tz) key: width months */
} EtlSwapPeriod;

/* the partition key of a partition_swap target, as its SQL needs it */
typedef struct EtlSwapKey
{
	char strategy;		/* PARTITION_STRATEGY_RANGE or _LIST */
	AttrNumber attnum;	/* the key column, in the target */
	const char *column; /* its name, quoted */
	Oid type;			/* its type and typmod */
	int32 typmod;
	Oid collation;			 /* the partition key's collation, or 0 */
	const char *type_sql;	 /* the type with typmod, qualified */
	const char *collate_sql; /* " COLLATE <collation>" or "" */
	const char *eq_sql;		 /* OPERATOR(schema.=) of the key's opfamily */
	EtlSwapPeriod period;
	int64 width; /* of a period, in its unit */
} EtlSwapKey;

/* the CHECK constraint of a staging table that equals its partition bound */
#define ETL_SWAP_BOUND "etl_swap_bound"

/* the CHECK constraint of the batch table of a target that is a partition:
 * the target's partition constraint */
#define ETL_SWAP_PARENT "partition_constraint_of_target"

/* one statement of the swap (etl_deparse_swap_step()) */
typedef enum EtlSwapStep
{
	ETL_SWAP_ATTACH,
	ETL_SWAP_DROP,
	ETL_SWAP_RENAME,
	ETL_SWAP_RENAME_INDEX,
	ETL_SWAP_UNBOUND,
	ETL_SWAP_ANALYZE
} EtlSwapStep;

/* names of the routing columns of the batch table */
#define ETL_SWAP_CUR "etl_swap_cur"
#define ETL_SWAP_DEST "etl_swap_dest"
#define ETL_SWAP_GAP "etl_swap_gap"
#define ETL_SWAP_PERIOD "etl_swap_period"

extern void etl_swap_check_definition(EtlPipeline *p, Oid source, Oid target);
extern void etl_swap_load(EtlRun *run, EtlLoadCounts *c);
extern void etl_swap_finish(EtlRun *run);

/* what a swap refuses (swap_guard.c) */
extern void etl_swap_check_target(EtlPipeline *p, Relation rel);
extern void etl_swap_check_lock_slots(EtlPipeline *p, int nparts,
									  int64 needed);
extern void etl_swap_lock_slots_error(EtlPipeline *p, int nparts,
									  int64 needed);
extern bool etl_swap_out_of_lock_slots(ErrorData *edata);

#endif /* ETL_SWAP_H */
