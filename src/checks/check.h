/*-------------------------------------------------------------------------
 *
 * check.h
 *	  A quality check as the checks' files share it: its kind, severity and
 *	  parameters, resolved against a run's batch, and what it found.
 *
 * IDENTIFICATION
 *	  src/checks/check.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_CHECK_H
#define ETL_CHECK_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "sql/columns.h"
#include "sql/run_state.h"

typedef enum EtlCheckKind
{
	CK_NOT_NULL,
	CK_UNIQUE,
	CK_ACCEPTED_VALUES,
	CK_POSITIVE,
	CK_RANGE,
	CK_FOREIGN_KEY,
	CK_Z_SCORE,
	CK_ROW_COUNT,
	CK_EXPRESSION,
	CK_FRESHNESS,
	CK_COUNT
} EtlCheckKind;

typedef enum EtlSeverity
{
	SEV_CRITICAL,
	SEV_WARNING,
	SEV_QUARANTINE,
	SEV_COUNT
} EtlSeverity;

/* one check, with what its kind needs resolved against the batch */
/*
 * How a foreign key check probes the referenced values (etl_check_fk_probe()):
 * FK_SUBPLAN a hashed IN (SELECT ...) subplan (a large referenced table, or
 * one whose column has another type than the batch's); FK_INT_SET
 * etl_not_in(), a set of int8 each process reads once (integer columns);
 * FK_ARRAY "= ANY" over the values read once per run into an array
 * parameter (other types with a hashable equality).
 */
typedef enum EtlFkProbe
{
	FK_SUBPLAN = 0,
	FK_INT_SET,
	FK_ARRAY
} EtlFkProbe;

typedef struct EtlCheck
{
	char *name;
	EtlCheckKind kind;
	char *column; /* NULL for row_count, expression, freshness */
	Jsonb *params;
	EtlSeverity severity;

	EtlColumn *col; /* the batch column, NULL without one */
	Oid coltype;	/* the batch column's type */
	Datum values;	/* accepted_values: text[] */
	char *min;		/* range: bounds as text, or NULL */
	char *max;
	double threshold; /* z_score */
	int64 rc_min;	  /* row_count, -1: none */
	int64 rc_max;
	char *ref_table; /* foreign_key: quoted qualified name */
	char *ref_column;
	Oid ref_relid;
	AttrNumber ref_attnum;
	Oid ref_type;	   /* the referenced column's type */
	EtlFkProbe fk;	   /* how the referenced values are probed */
	Datum ref_values;  /* FK_ARRAY: the array of the referenced values */
	char *expr;		   /* expression: its text */
	Interval *max_age; /* freshness */
	int param_no;	   /* first positional argument of its params */
} EtlCheck;

/* what a check found in one batch */
typedef struct EtlCheckResult
{
	EtlCheck *check;
	bool passed;
	int64 failing;
	StringInfo observed; /* a JSON object */
	double mean;		 /* z_score: of the batch's finite values */
	double stddev;
} EtlCheckResult;

extern const char *const etl_check_kind_names[];
extern const bool etl_check_kind_has_column[];
extern const bool etl_check_kind_row_level[];
extern const char *const etl_check_severity_names[];

/* definition (check_define.c) */
extern void etl_check_resolve(EtlCheck *c, EtlPipeline *p, EtlColumnMap *map,
							  Oid source_relid);

/* evaluation (check_eval.c) */
extern EtlFkProbe etl_check_fk_probe(EtlCheck *c);
extern char *etl_checks_pass_sql(EtlRun *run, List *checks, EtlArgs *args,
								 int *first_col);

#endif /* ETL_CHECK_H */
