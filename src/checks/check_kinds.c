/*-------------------------------------------------------------------------
 *
 * check_kinds.c
 *	  The kinds of quality checks, one entry each: its name, whether it
 *	  looks at a column, whether it judges single rows, the validation of
 *	  its params, the SQL of its failing rows or of its aggregate (the
 *	  builders of sql/deparse_checks.c), and how its result is read and
 *	  judged (check_judge.c).  The definition (check_define.c) and the
 *	  evaluation (check_eval.c) look a check's kind up here and follow its
 *	  entry; no other file names a kind.
 *
 *	  Adding a kind: one entry here, its predicate or aggregate in
 *	  sql/deparse_checks.c, its validation in check_params.c and, when the
 *	  pass's count of failing rows is not its result, its reading and
 *	  judging in check_judge.c; and its name in the CHECK constraint of
 *	  etl.checks.kind (src/install/10_catalogs.sql).
 *
 * IDENTIFICATION
 *	  src/checks/check_kinds.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pipelines.h"
#include "checks/check.h"
#include "checks/check_judge.h"
#include "checks/check_kinds.h"
#include "checks/check_params.h"
#include "sql/deparse_checks.h"

/*
 * The kinds, in the order of the table (and of the hint that lists them).
 * Only this file names them: the rest of the code follows a check's entry
 * (scripts/check_tables refuses these constants elsewhere).
 */
typedef enum EtlCheckKindId
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
} EtlCheckKindId;

static const EtlCheckKindDef kinds[] = {
	[CK_NOT_NULL] = {
		.name = "not_null",
		.has_column = true,
		.row_level = true,
		.replayed = true,
		.predicate = etl_deparse_not_null_fails,
		.read = etl_check_read_count,
		.samples = etl_check_sample_keys,
	},
	[CK_UNIQUE] = {
		.name = "unique",
		.has_column = true,
		.row_level = true,
		.replayed = true,
		.validate = etl_check_validate_unique,
		.predicate = etl_deparse_unique_fails,
		.aggregate = etl_deparse_unique_pass,
		.read = etl_check_read_unique,
		.judge = etl_check_judge_unique,
		.samples = etl_check_sample_unique,
	},
	[CK_ACCEPTED_VALUES] = {
		.name = "accepted_values",
		.has_column = true,
		.row_level = true,
		.replayed = true,
		.validate = etl_check_validate_accepted_values,
		.add_args = etl_check_args_accepted_values,
		.predicate = etl_deparse_accepted_values_fails,
		.read = etl_check_read_count,
		.samples = etl_check_sample_keys,
	},
	[CK_POSITIVE] = {
		.name = "positive",
		.has_column = true,
		.row_level = true,
		.replayed = true,
		.validate = etl_check_validate_numeric,
		.predicate = etl_deparse_positive_fails,
		.read = etl_check_read_count,
		.samples = etl_check_sample_keys,
	},
	[CK_RANGE] = {
		.name = "range",
		.has_column = true,
		.row_level = true,
		.replayed = true,
		.validate = etl_check_validate_range,
		.add_args = etl_check_args_range,
		.predicate = etl_deparse_range_fails,
		.read = etl_check_read_count,
		.samples = etl_check_sample_keys,
	},
	[CK_FOREIGN_KEY] = {
		.name = "foreign_key",
		.has_column = true,
		.row_level = true,
		.replayed = true,
		.validate = etl_check_validate_foreign_key,
		.prepare = etl_check_prepare_foreign_key,
		.add_args = etl_check_args_foreign_key,
		.predicate = etl_deparse_foreign_key_fails,
		.read = etl_check_read_count,
		.samples = etl_check_sample_keys,
	},
	[CK_Z_SCORE] = {
		/* judges rows by the batch's mean: not a replay's few rows */
		.name = "z_score",
		.has_column = true,
		.row_level = true,
		.replayed = false,
		.validate = etl_check_validate_z_score,
		.predicate = etl_deparse_z_score_fails,
		.aggregate = etl_deparse_z_score_pass,
		.read = etl_check_read_z_score,
		.samples = etl_check_sample_z_score,
	},
	[CK_ROW_COUNT] = {
		.name = "row_count",
		.validate = etl_check_validate_row_count,
		.read = etl_check_read_row_count,
	},
	[CK_EXPRESSION] = {
		.name = "expression",
		.row_level = true,
		.replayed = true,
		.validate = etl_check_validate_expression,
		.predicate = etl_deparse_expression_fails,
		.read = etl_check_read_count,
		.samples = etl_check_sample_keys,
	},
	[CK_FRESHNESS] = {
		.name = "freshness",
		.validate = etl_check_validate_freshness,
		.judge = etl_check_judge_freshness,
	},
};
StaticAssertDecl(lengthof(kinds) == CK_COUNT, "one entry per check kind");

/*
 * etl_check_kind_lookup returns the entry of the kind called name, or
 * raises 22023 ("invalid check kind"), listing the kinds.
 */
const EtlCheckKindDef *
etl_check_kind_lookup(const char *name)
{
	const char *names[CK_COUNT];

	for (int i = 0; i < CK_COUNT; i++)
		names[i] = kinds[i].name;
	return &kinds[etl_name_lookup(names, CK_COUNT, name, "check kind")];
}
