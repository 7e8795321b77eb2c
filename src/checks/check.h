/*-------------------------------------------------------------------------
 *
 * check.h
 *	  A quality check as the checks' files share it: its kind, severity and
 *	  parameters, resolved against a run's batch, and what it found; and
 *	  the entry of a kind in the kind table (check_kinds.c).
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
#include "sql/deparse_checks.h"
#include "sql/run_state.h"

typedef enum EtlSeverity
{
	SEV_CRITICAL,
	SEV_WARNING,
	SEV_QUARANTINE,
	SEV_COUNT
} EtlSeverity;

typedef struct EtlCheckKindDef EtlCheckKindDef;

/* one check, with what its kind needs resolved against the batch */
typedef struct EtlCheck
{
	char *name;
	const EtlCheckKindDef *kind; /* its entry of the kind table */
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

/* what a check is validated against (etl_check_resolve()) */
typedef struct EtlCheckScope
{
	EtlPipeline *p;
	EtlColumnMap *map; /* the batch's columns */
	Oid source_relid;
	const char *text; /* the text being parsed, for error positions */
} EtlCheckScope;

/*
 * A kind of check: one entry of the kind table (check_kinds.c), which the
 * definition and the evaluation look up and follow.  A NULL callback means
 * the kind has nothing to do at that point.
 */
struct EtlCheckKindDef
{
	const char *name;
	bool has_column; /* looks at one batch column */
	bool row_level;	 /* judges single rows: quarantine, sample keys */
	bool replayed;	 /* applied again to replayed dead letters */

	/* definition: validate its params (and column type), fill the check */
	void (*validate)(EtlCheck *c, EtlCheckScope *scope);

	/* evaluation */
	void (*prepare)(EtlCheck *c, EtlRun *run);	  /* run NULL: query shape */
	void (*add_args)(EtlArgs *args, EtlCheck *c); /* its params as $n */
	EtlCheckPredicate predicate; /* when a batch row fails (sql/) */
	EtlCheckAggregate aggregate; /* its own pass columns (sql/); NULL:
								  * the pass counts the predicate's rows */
	void (*read)(EtlCheckResult *r, int col, int64 nrows); /* the pass */
	void (*judge)(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
				  const EtlCheckBatch *b); /* what needs its own query */
	void (*samples)(EtlRun *run, EtlCheckResult *r, EtlArgs *args,
					const EtlCheckBatch *b); /* of a failed check */
};

extern const char *const etl_check_severity_names[];

/* definition (check_define.c) */
extern void etl_check_resolve(EtlCheck *c, EtlPipeline *p, EtlColumnMap *map,
							  Oid source_relid);

/* evaluation (check_eval.c) */
extern char *etl_checks_pass_sql(EtlRun *run, List *checks, EtlArgs *args,
								 int *first_col);

#endif /* ETL_CHECK_H */
