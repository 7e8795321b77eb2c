/*-------------------------------------------------------------------------
 *
 * drift.c
 *	  Schema drift: a source that gained, lost or retyped columns since its
 *	  pipeline was last validated, handled per on_schema_change.
 *
 *	  etl.pipelines.source_columns keeps the source's columns (name and
 *	  type) as validation saw them.  Each run compares them with the
 *	  source's columns now:
 *
 *	  fail				 the run fails, naming every added, dropped and
 *						 retyped column (the failure is recorded like any
 *						 other); etl_alter_pipeline() validates again and
 *						 accepts the new shape.
 *	  ignore			 the run loads what still maps; the new shape is
 *						 remembered.
 *	  append_new_columns as ignore, and with the default transform, source
 *						 columns the target lacks are added to it (ALTER
 *						 TABLE ... ADD COLUMN, as the pipeline owner) and
 *						 loaded.
 *
 *	  A dropped watermark or key column always fails the run: the range or
 *	  the load cannot be worked out without it.
 *
 * IDENTIFICATION
 *	  src/modes/drift.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "base/security.h"
#include "base/spi_util.h"
#include "catalog/pipelines.h"
#include "modes/drift.h"
#include "modes/mode.h"
#include "sql/deparse_source.h"
#include "sql/run_state.h"

/* the source's columns as JSON: [{"name": ..., "type": ...}, ...] */
#define SHAPE_SQL                                                             \
	"SELECT pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("              \
	"'name', a.attname, 'type', pg_catalog.format_type(a.atttypid, "          \
	"a.atttypmod)) ORDER BY a.attnum)::pg_catalog.text"                       \
	" FROM pg_catalog.pg_attribute a"                                         \
	" WHERE a.attrelid OPERATOR(pg_catalog.=) $1"                             \
	" AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped"

/*
 * etl_source_shape returns the columns of a relation as JSON text.
 */
char *
etl_source_shape(Oid relid)
{
	EtlArgs args;

	etl_args_init(&args);
	etl_args_add(&args, OIDOID, ObjectIdGetDatum(relid), false);
	etl_spi_exec(SHAPE_SQL, &args, SPI_OK_SELECT, InvalidSnapshot);
	return etl_spi_text(0, 0);
}

/*
 * remember_shape stores the source's current shape in the catalog (in the
 * run's transaction).
 */
static void
remember_shape(EtlRun *run, const char *shape)
{
	EtlArgs args;
	EtlUserSwitch sw;

	etl_args_init(&args);
	etl_args_add_text(&args, shape);
	etl_args_add_int8(&args, run->p->id);
	etl_become_extension_owner(&sw);
	etl_spi_exec("UPDATE etl.pipelines SET source_columns = "
				 "$1::pg_catalog.jsonb"
				 " WHERE pipeline_id OPERATOR(pg_catalog.=) $2",
				 &args, SPI_OK_UPDATE, InvalidSnapshot);
	etl_restore_user(&sw);
	/* with the definition, which outlives the attempt's memory */
	run->p->source_columns =
		MemoryContextStrdup(GetMemoryChunkContext(run->p), shape);
}

/*
 * drift_detail says what changed: "Added: a; dropped: b; retyped: c (x to
 * y)." (the parts present).
 */
static char *
drift_detail(const char *added, const char *dropped, const char *retyped)
{
	StringInfoData buf;

	initStringInfo(&buf);
	if (added)
		appendStringInfo(&buf, "added: %s", added);
	if (dropped)
		appendStringInfo(&buf, "%sdropped: %s", buf.len ? "; " : "", dropped);
	if (retyped)
		appendStringInfo(&buf, "%sretyped: %s", buf.len ? "; " : "", retyped);
	appendStringInfoChar(&buf, '.');
	buf.data[0] = pg_toupper((unsigned char) buf.data[0]);
	return buf.data;
}

/*
 * etl_schema_drift compares the source's columns with those the pipeline
 * was validated against and acts per on_schema_change.  Runs as the
 * pipeline owner, before the columns of the run are resolved.
 */
void
etl_schema_drift(EtlRun *run)
{
	EtlPipeline *p = run->p;
	EtlArgs args;
	char *shape = etl_source_shape(run->source_relid);
	char *added;
	char *dropped;
	char *retyped;
	char *detail;
	List *to_add;

	/* a dropped watermark or key column has errors of its own, further on */
	if (p->watermark_column != NULL &&
		get_attnum(run->source_relid, p->watermark_column) ==
			InvalidAttrNumber)
		return;
	if (p->transform == NULL)
	{
		ListCell *lc;

		foreach (lc, p->key)
			if (get_attnum(run->source_relid, lfirst(lc)) == InvalidAttrNumber)
				return;
	}

	if (p->source_columns == NULL)
	{
		/* a pipeline stored before shapes were kept: start now */
		remember_shape(run, shape);
		return;
	}
	/* both are jsonb's canonical text: equal text, nothing changed */
	if (strcmp(shape, p->source_columns) == 0)
		return;

	etl_args_init(&args);
	etl_args_add(
		&args, JSONBOID,
		DirectFunctionCall1(jsonb_in, CStringGetDatum(p->source_columns)),
		false);
	etl_args_add(&args, JSONBOID,
				 DirectFunctionCall1(jsonb_in, CStringGetDatum(shape)), false);
	etl_args_add(&args, OIDOID, ObjectIdGetDatum(run->target_relid), false);
	etl_spi_exec(
		"WITH s AS (SELECT e OPERATOR(pg_catalog.->>) 'name' AS name,"
		"  e OPERATOR(pg_catalog.->>) 'type' AS type, o"
		"  FROM pg_catalog.jsonb_array_elements($1) WITH ORDINALITY AS x(e, o)),"
		" c AS (SELECT e OPERATOR(pg_catalog.->>) 'name' AS name,"
		"  e OPERATOR(pg_catalog.->>) 'type' AS type, o"
		"  FROM pg_catalog.jsonb_array_elements($2) WITH ORDINALITY AS x(e, o))"
		" SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c.name), ', '"
		"   ORDER BY c.o) FILTER (WHERE s.name IS NULL),"
		" pg_catalog.string_agg(pg_catalog.quote_ident(s.name), ', '"
		"   ORDER BY s.o) FILTER (WHERE c.name IS NULL),"
		" pg_catalog.string_agg(pg_catalog.concat(pg_catalog.quote_ident("
		"   c.name), ' (', s.type, ' to ', c.type, ')'), ', ' ORDER BY c.o)"
		"   FILTER (WHERE s.type OPERATOR(pg_catalog.<>) c.type),"
		" pg_catalog.array_agg(pg_catalog.concat(pg_catalog.quote_ident("
		"   c.name), ' ', c.type) ORDER BY c.o) FILTER (WHERE s.name IS NULL AND"
		"   NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a"
		"    WHERE a.attrelid OPERATOR(pg_catalog.=) $3 AND NOT a.attisdropped"
		"    AND a.attname OPERATOR(pg_catalog.=) c.name::pg_catalog.name))"
		" FROM s FULL JOIN c ON s.name OPERATOR(pg_catalog.=) c.name",
		&args, SPI_OK_SELECT, InvalidSnapshot);
	added = etl_spi_text(0, 0);
	dropped = etl_spi_text(0, 1);
	retyped = etl_spi_text(0, 2);
	to_add = NIL;
	if (!etl_spi_isnull(0, 3))
	{
		bool isnull;
		Datum *elems;
		int n;

		deconstruct_array(DatumGetArrayTypeP(etl_spi_datum(0, 3, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
		for (int i = 0; i < n; i++)
			to_add = lappend(to_add, TextDatumGetCString(elems[i]));
	}
	if (added == NULL && dropped == NULL && retyped == NULL)
		return;
	detail = drift_detail(added, dropped, retyped);

	if (p->on_schema_change == ETL_SCHEMA_FAIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("source %s of pipeline \"%s\" changed since the "
						"pipeline was validated",
						run->source_sql, p->name),
				 errdetail("%s", detail),
				 errhint("If the pipeline suits the new columns, accept them "
						 "with SELECT etl_alter_pipeline(%s); or set "
						 "on_schema_change => 'ignore' or "
						 "'append_new_columns'.",
						 quote_literal_cstr(p->name))));

	if (p->on_schema_change == ETL_SCHEMA_APPEND_NEW_COLUMNS &&
		p->transform == NULL && to_add != NIL)
	{
		StringInfoData ddl;
		StringInfoData list;
		List *definitions = NIL;
		ListCell *lc;
		EtlBatchSource descr;

		/* each "name type" as ADD COLUMN, change metadata left out */
		etl_describe_batch(p, &descr);
		initStringInfo(&list);
		foreach (lc, to_add)
		{
			char *col = lfirst(lc);

			if (descr.omit_prefix != NULL &&
				strncmp(col, descr.omit_prefix, strlen(descr.omit_prefix)) ==
					0)
				continue;
			definitions = lappend(definitions, col);
			appendStringInfo(&list, "%s%s", list.len ? ", " : "", col);
		}
		if (definitions != NIL)
		{
			initStringInfo(&ddl);
			etl_deparse_add_columns(&ddl, run->target_sql, definitions);
			etl_spi_exec(ddl.data, NULL, SPI_OK_UTILITY, InvalidSnapshot);
			ereport(NOTICE, (errmsg("pipeline \"%s\": added to target %s: %s",
									p->name, run->target_sql, list.data)));
		}
	}
	else
		ereport(NOTICE,
				(errmsg("source %s of pipeline \"%s\" changed; loading what "
						"still maps",
						run->source_sql, p->name),
				 errdetail("%s", detail)));
	remember_shape(run, shape);
}
