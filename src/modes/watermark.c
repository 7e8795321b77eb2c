/*-------------------------------------------------------------------------
 *
 * watermark.c
 *	  Watermarks: the types a mode accepts for its watermark column, reading
 *	  a watermark's text as a value of that type (as the pipeline owner,
 *	  never through a domain), finite values, the snapshot watermark of mode
 *	  xid, and the definitions a backfill or a reset refuses.
 *
 * IDENTIFICATION
 *	  src/modes/watermark.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "base/security.h"
#include "loads/load_ops.h"
#include "modes/mode.h"
#include "modes/watermark.h"

typedef struct WatermarkErrorArg
{
	const char *pipeline;
	const char *text;
} WatermarkErrorArg;

/*
 * etl_watermark_type_ok tells whether a watermark column of this type suits
 * the mode (EtlModeOps.watermark_type_ok): exactly one of the built-in
 * types, never a domain over one (whose checks could run the code of the
 * column's owner wherever a watermark is read).  A mode without a
 * watermark column accepts none.
 */
bool
etl_watermark_type_ok(EtlMode mode, Oid type)
{
	const EtlModeOps *ops = etl_mode_ops(mode);

	return ops->watermark_type_ok != NULL && ops->watermark_type_ok(type);
}

/*
 * etl_watermark_domain_detail returns the errdetail of a watermark column
 * whose type is a domain (0 otherwise, which errdetail-less ereports
 * accept).
 */
int
etl_watermark_domain_detail(Oid type)
{
	Oid base = getBaseType(type);

	if (base == type)
		return 0;
	return errdetail("Type %s is a domain over %s: its CHECK constraints "
					 "would run wherever a watermark is read, whoever reads "
					 "it.",
					 format_type_be(type), format_type_be(base));
}

/*
 * etl_check_watermark_type raises 42804 when the watermark column's type
 * does not suit the pipeline's mode (a domain over a type that would suit
 * included): the common message with the mode's hint
 * (EtlModeOps.watermark_type_hint), or the mode's own error.
 */
void
etl_check_watermark_type(EtlPipeline *p, Oid type)
{
	const EtlModeOps *ops = etl_mode_ops(p->mode);

	if (ops->watermark_type_ok == NULL || ops->watermark_type_ok(type))
		return;
	if (ops->watermark_type_error != NULL)
		ops->watermark_type_error(p, type);
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("watermark column \"%s\" of %s is of type %s, which "
					"mode %s cannot use",
					p->watermark_column, p->source, format_type_be(type),
					ops->name),
			 etl_watermark_domain_detail(type),
			 errhint("%s", ops->watermark_type_hint)));
}

/*
 * watermark_error_callback names the watermark and its pipeline in the
 * errors of its conversion.
 */
static void
watermark_error_callback(void *arg)
{
	WatermarkErrorArg *a = arg;

	errcontext("watermark \"%s\" of pipeline \"%s\"", a->text, a->pipeline);
}

/*
 * etl_watermark_datum converts watermark text (a stored watermark, a reset
 * value, a backfill bound) to a value of the watermark column's type: the
 * type's input function, under the pinned DateStyle, as the pipeline owner
 * in a security-restricted operation.  The type must be one the mode
 * accepts (42804 otherwise): never a domain, whose CHECK constraints could
 * run the code of the column's owner.  An unreadable value is reported with
 * the pipeline's name.
 */
Datum
etl_watermark_datum(EtlPipeline *p, const char *text, Oid type, int32 typmod)
{
	ErrorContextCallback errcb;
	WatermarkErrorArg arg = { p->name, text };
	EtlUserSwitch sw = { 0 };
	Oid typinput;
	Oid typioparam;
	Datum result;

	etl_check_watermark_type(p, type);
	errcb.callback = watermark_error_callback;
	errcb.arg = &arg;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	getTypeInputInfo(type, &typinput, &typioparam);
	etl_become_owner(&sw, p->owner);
	result = OidInputFunctionCall(typinput, (char *) text, typioparam, typmod);
	etl_restore_user(&sw);
	error_context_stack = errcb.previous;
	return result;
}

/*
 * etl_watermark_is_finite tells whether a value of a watermark column's type
 * is a position: not NaN, infinity or -infinity (numeric, timestamp and
 * timestamptz; integers and pg_lsn always are).
 */
bool
etl_watermark_is_finite(Oid type, Datum value)
{
	switch (type)
	{
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			return !TIMESTAMP_NOT_FINITE(DatumGetTimestamp(value));
		case NUMERICOID:
			return !numeric_is_nan(DatumGetNumeric(value)) &&
				   !numeric_is_inf(DatumGetNumeric(value));
		default:
			return true;
	}
}

/*
 * etl_check_watermark_finite refuses a watermark (text, read as value of
 * type) that is no position: NaN, infinity or -infinity.  stored: the
 * pipeline's stored watermark, which a run reads; else a value given to
 * etl_reset_watermark.
 */
void
etl_check_watermark_finite(EtlPipeline *p, const char *text, Oid type,
						   Datum value, bool stored)
{
	if (etl_watermark_is_finite(type, value))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("watermark \"%s\" of pipeline \"%s\" is not finite", text,
					p->name),
			 errdetail("A watermark is the position of the last row loaded: "
					   "no row lies past NaN or infinity, and every row lies "
					   "past -infinity."),
			 stored ? errhint("Reset it: SELECT etl_reset_watermark(%s, <last "
							  "loaded value>), or NULL to reload everything.",
							  quote_literal_cstr(p->name))
					: errhint("Give the last value loaded, or NULL to reload "
							  "everything.")));
}

/*
 * etl_xid_watermark_is_local tells, without raising anything, whether an
 * xid-mode watermark was taken in this cluster (a bare snapshot counts as
 * this cluster's, as etl_xid_watermark_parse takes it).
 */
bool
etl_xid_watermark_is_local(const char *watermark)
{
	const char *slash = strchr(watermark, '/');
	char *end;
	uint64 sysid;

	if (slash == NULL)
		return true;
	errno = 0;
	sysid = strtou64(watermark, &end, 10);
	return errno == 0 && end == slash && sysid == GetSystemIdentifier();
}

/*
 * etl_xid_watermark_parse splits an xid-mode watermark
 * "<system identifier>/<pg_snapshot>" and checks that it was taken in this
 * cluster: xid8 values of another cluster (a restore, a pg_upgrade'd copy)
 * mean nothing here.  A bare snapshot is taken as this cluster's.  Returns
 * the snapshot text; raises 22023 for anything else.
 */
char *
etl_xid_watermark_parse(EtlPipeline *p, const char *watermark)
{
	const char *slash = strchr(watermark, '/');
	const char *snap = slash ? slash + 1 : watermark;
	uint64 here = GetSystemIdentifier();

	if (slash != NULL)
	{
		char *end;
		uint64 sysid;

		errno = 0;
		sysid = strtou64(watermark, &end, 10);
		if (errno != 0 || end != slash)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("watermark \"%s\" of pipeline \"%s\" is not a "
							"transaction snapshot",
							watermark, p->name),
					 errhint("An xid watermark is <system identifier>/<xmin>:"
							 "<xmax>:<xip list>, as pg_current_snapshot() "
							 "shows it.")));
		if (sysid != here)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("watermark of pipeline \"%s\" was taken in "
							"another cluster",
							p->name),
					 errdetail("It belongs to the cluster with system "
							   "identifier " UINT64_FORMAT
							   ", this one is " UINT64_FORMAT
							   "; transaction ids of one cluster mean nothing "
							   "in another (a restore or a copy).",
							   sysid, here),
					 errhint("After restoring a dump, run SELECT "
							 "etl_rebase_xid(%s); as the owner of the source: "
							 "the next run loads what was not loaded before "
							 "the dump.  Or reload from the start with "
							 "etl_reset_watermark(%s).",
							 quote_literal_cstr(p->source),
							 quote_literal_cstr(p->name))));
	}
	/* must read as a pg_snapshot */
	(void) DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(snap));
	return pstrdup(snap);
}

/*
 * cmp_uint64 orders transaction ids for qsort.
 */
static int
cmp_uint64(const void *a, const void *b)
{
	uint64 x = *(const uint64 *) a;
	uint64 y = *(const uint64 *) b;

	return x < y ? -1 : (x > y ? 1 : 0);
}

/*
 * etl_xid_watermark_with returns the xid-mode watermark
 * "<system identifier>/<snapshot>" of this cluster for the text of a
 * pg_snapshot, with the given transaction ids added to its in-progress list
 * (those below its xmax; its xmin lowered to the smallest): rows stamped
 * with them count as not committed yet, and the next run takes them.
 */
char *
etl_xid_watermark_with(const char *snap, const uint64 *xids, int n)
{
	char *copy = pstrdup(snap);
	char *p = copy;
	char *colon;
	uint64 xmin;
	uint64 xmax;
	uint64 *all;
	int count = 0;
	StringInfoData buf;

	xmin = strtou64(p, &colon, 10);
	xmax = strtou64(colon + 1, &p, 10);
	p++; /* past the second colon */
	all = palloc(sizeof(uint64) * (strlen(p) / 2 + n + 1));
	while (*p != '\0')
	{
		all[count++] = strtou64(p, &p, 10);
		if (*p == ',')
			p++;
	}
	for (int i = 0; i < n; i++)
	{
		if (xids[i] >= xmax)
			continue;
		all[count++] = xids[i];
		xmin = Min(xmin, xids[i]);
	}
	qsort(all, count, sizeof(uint64), cmp_uint64);

	initStringInfo(&buf);
	appendStringInfo(&buf,
					 UINT64_FORMAT "/" UINT64_FORMAT ":" UINT64_FORMAT ":",
					 GetSystemIdentifier(), xmin, xmax);
	for (int i = 0; i < count; i++)
	{
		if (i > 0 && all[i] == all[i - 1])
			continue;
		appendStringInfo(&buf, "%s" UINT64_FORMAT, i > 0 ? "," : "", all[i]);
	}
	return buf.data;
}

/*
 * etl_check_backfill_mode raises 0A000 for a pipeline whose mode has no
 * watermark column to take a range of (EtlModeOps.backfills: modes xid,
 * snapshot, full).
 */
void
etl_check_backfill_mode(EtlPipeline *p)
{
	if (!etl_mode_ops(p->mode)->backfills)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("pipeline \"%s\" of mode %s cannot be backfilled by "
						"range",
						p->name, etl_mode_names[p->mode]),
				 errhint("Backfill needs a watermark column (modes timestamp, "
						 "serial, cdc); reset the watermark to reload a "
						 "pipeline of mode xid, and modes snapshot and full "
						 "read everything at each run.")));
}

/*
 * etl_check_keyless_reload refuses, unless force, to read again the rows a
 * pipeline that appends without a key has loaded (a backfill, a watermark
 * reset): load append without a key inserts every row it reads, so each of
 * those rows would be in the target twice.  action says what was asked
 * ("backfill", "reset the watermark of"); forced_call is the call that
 * does it anyway, for the hint.
 */
void
etl_check_keyless_reload(EtlPipeline *p, const char *action, bool force,
						 const char *forced_call)
{
	if (force || etl_load_ops(p->load)->needs_key || p->key != NIL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot %s pipeline \"%s\": it appends without a key",
					action, p->name),
			 errdetail("Load append without a key inserts every row it "
					   "reads, so the rows it loaded before would be in the "
					   "target twice."),
			 errhint("Delete those rows from the target first and call %s, "
					 "or give the pipeline a key: etl_alter_pipeline(%s, "
					 "key => ARRAY[...]).",
					 forced_call, quote_literal_cstr(p->name))));
}
