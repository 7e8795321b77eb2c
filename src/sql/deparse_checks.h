/*-------------------------------------------------------------------------
 *
 * deparse_checks.h
 *	  The SQL text of the quality checks: each kind's failing-row predicate
 *	  or aggregate, the one pass over the batch, the queries that judge a
 *	  check further, and the statement that sets failing rows aside.
 *
 * IDENTIFICATION
 *	  src/sql/deparse_checks.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_DEPARSE_CHECKS_H
#define ETL_DEPARSE_CHECKS_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

#include "sql/columns.h"

/*
 * How a foreign key check probes the referenced values: FK_SUBPLAN a
 * hashed IN (SELECT ...) subplan (a large referenced table, or one whose
 * column has another type than the batch's); FK_INT_SET etl_not_in(), a set
 * of int8 each process reads once (integer columns); FK_ARRAY "= ANY" over
 * the values read once per run into an array parameter (other types with a
 * hashable equality).
 */
typedef enum EtlFkProbe
{
	FK_SUBPLAN = 0,
	FK_INT_SET,
	FK_ARRAY
} EtlFkProbe;

/*
 * The batch the checks read, as text: every statement starts with
 * delta_cte (the etl_delta CTE) and reads the transform as a subquery
 * aliased etl_b.  target and columns serve the unique checks' look at the
 * target's rows of other keys.
 */
typedef struct EtlCheckBatch
{
	const char *delta_cte; /* "WITH etl_delta AS (...)" and its newline */
	const char *transform; /* the transform over etl_delta */
	const char *target;	   /* the target, quoted and qualified */
	List *columns;		   /* EtlColumn *, the batch's (keys marked) */
} EtlCheckBatch;

/*
 * One check as its SQL needs it: the column, where its parameters start
 * among the statement's positional arguments, and what its kind uses.
 */
typedef struct EtlCheckSql
{
	const EtlCheckBatch *batch;
	EtlColumn *col;			/* the batch column, NULL without one */
	Oid coltype;			/* its type */
	int param_no;			/* the first $n of its params */
	bool has_min;			/* range: $param_no is min, $param_no + 1 max */
	bool has_max;			/*   (each when present) */
	EtlFkProbe fk;			/* foreign_key: how it probes */
	const char *ref_table;	/* foreign_key: quoted qualified name */
	const char *ref_column; /* foreign_key: unquoted */
	double mean;			/* z_score: of the batch's finite values */
	double stddev;
	double threshold;
	const char *expr; /* expression: its text */
} EtlCheckSql;

/* appends the condition under which batch row etl_b fails the check */
typedef void (*EtlCheckPredicate)(StringInfo buf, const EtlCheckSql *d);

/* appends the check's columns of the one pass (",\n  expr" each), returns
 * how many */
typedef int (*EtlCheckAggregate)(StringInfo buf, const EtlCheckSql *d);

/* one check in a statement over several: what it contributes */
typedef struct EtlCheckPart
{
	EtlCheckAggregate aggregate; /* its own pass columns, or NULL */
	EtlCheckPredicate predicate; /* its failing rows, or NULL */
	EtlCheckSql sql;
	int first_col; /* set by etl_deparse_checks_pass() */
} EtlCheckPart;

/* the failing-row predicates, one per row-level kind */
extern void etl_deparse_not_null_fails(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_unique_fails(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_accepted_values_fails(StringInfo buf,
											  const EtlCheckSql *d);
extern void etl_deparse_positive_fails(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_range_fails(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_foreign_key_fails(StringInfo buf,
										  const EtlCheckSql *d);
extern void etl_deparse_z_score_fails(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_expression_fails(StringInfo buf, const EtlCheckSql *d);

/* the aggregates of kinds that do not count failing rows in the pass */
extern int etl_deparse_unique_pass(StringInfo buf, const EtlCheckSql *d);
extern int etl_deparse_z_score_pass(StringInfo buf, const EtlCheckSql *d);

/* whole statements */
extern void etl_deparse_check_query(StringInfo buf, const EtlCheckBatch *b,
									const char *select_list, const char *tail);
extern void etl_deparse_checks_pass(StringInfo buf, const EtlCheckBatch *b,
									EtlCheckPart *parts, int nparts);
extern void etl_deparse_check_count(StringInfo buf, const EtlCheckBatch *b,
									const char *pred);
extern void etl_deparse_check_sample_keys(StringInfo buf,
										  const EtlCheckBatch *b,
										  const char *pred);
extern void etl_deparse_unique_recount(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_unique_clashes(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_unique_samples(StringInfo buf, const EtlCheckSql *d);
extern void etl_deparse_fk_values(StringInfo buf, const char *ref_table,
								  const char *ref_column, bool as_array,
								  int limit);
extern void etl_deparse_freshness_newest(StringInfo buf,
										 const char *watermark_column,
										 const char *source);
extern void etl_deparse_typed_nulls(StringInfo buf, List *columns);
extern void etl_deparse_checks_reject(StringInfo buf, const EtlCheckBatch *b,
									  const char *rn_batch,
									  const EtlCheckPart *parts, int nparts,
									  const char *stage_columns_s,
									  const char *stage_table);

#endif /* ETL_DEPARSE_CHECKS_H */
