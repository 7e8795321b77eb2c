/*-------------------------------------------------------------------------
 *
 * deparse_swap.h
 *	  The statements of load partition_swap, and the names and partition key
 *	  descriptor they share with loads/swap.c.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_swap.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_SWAP_H
#define ETL_DEPARSE_SWAP_H

#include "postgres.h"

#include "partitioning/partbounds.h"
#include "utils/acl.h"
#include "utils/relcache.h"

#include "sql/batch_sql.h"

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

extern char *etl_deparse_swap_batch_create(const EtlBatchSql *b,
										   const char *batch);
extern char *etl_deparse_swap_batch_shape(const EtlBatchSql *b,
										  const char *batch);
extern char *etl_deparse_swap_batch_key(const EtlBatchSql *b,
										const char *batch);
extern char *etl_deparse_swap_fill(const EtlBatchSql *b, const char *batch,
								   EtlSwapKey *k, bool join_target,
								   bool creatable, int param);
extern char *etl_deparse_swap_period(const char *expr, EtlSwapKey *k,
									 int param);
extern char *etl_deparse_swap_groups(const char *batch, EtlSwapKey *k);
extern char *etl_deparse_swap_movers(const char *batch);
extern char *etl_deparse_swap_filter(EtlSwapKey *k, bool is_new, int param);
extern char *etl_deparse_swap_batch_index(const char *batch, EtlSwapKey *k);
extern char *etl_deparse_swap_keep(const EtlBatchSql *b, const char *staging,
								   const char *old, const char *batch);
extern char *etl_deparse_swap_add(const EtlBatchSql *b, const char *staging,
								  const char *batch, const char *filter,
								  int which);
extern char *etl_deparse_partition_bound(Relation parent,
										 PartitionBoundSpec *spec,
										 char **qual);
extern char *etl_deparse_swap_staging(const char *staging, Oid template,
									  const char *qual);
extern char *etl_deparse_swap_index(Oid index, const char *staging,
									const char *name);
extern char *etl_deparse_swap_constraint(Oid constraint, const char *staging,
										 const char *name);
extern char *etl_deparse_grant(const char *rel, AclMode privs, Oid grantee,
							   bool grant_option);
extern char *etl_deparse_revoke_all(const char *rel, Oid grantee);
extern char *etl_deparse_set_owner(const char *rel, Oid role);
extern char *etl_deparse_comment(const char *rel, const char *comment);
extern char *etl_deparse_lock(const char *rels, const char *mode);
extern char *etl_deparse_swap_step(EtlSwapStep step, const char *target,
								   const char *rel, const char *arg);

#endif /* ETL_DEPARSE_SWAP_H */
