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
 *	  one, is created with the restriction lifted, as isolate.c does: the
 *	  statement runs no user code).
 *
 * IDENTIFICATION
 *	  src/loads/swap.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/comment.h"
#include "commands/defrem.h"
#include "common/int.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "base/settings.h"
#include "base/spi_util.h"
#include "loads/swap.h"
#include "sql/columns.h"
#include "sql/deparse_batch.h"
#include "sql/deparse_load.h"
#include "sql/deparse_swap.h"
#include "sql/names.h"
#include "sql/run_state.h"

/*
 * partitions rebuilt beyond which the batch table is indexed rather than
 * scanned once per partition
 */
#define ETL_SWAP_SCANS 4

/* how the batch's rows find their partition: the target's bounds now */
typedef struct SwapRoute
{
	int nbounds;
	Datum *bounds; /* range: the finite bounds in order; list: the values */
	int nparts;
	Oid *parts;		  /* range: nbounds + 1, the partition of each bucket (0:
				 * a gap); list: nbounds, the partition of each value */
	Oid null_part;	  /* list: the partition that takes NULL, or 0 */
	Oid default_part; /* or 0 */
} SwapRoute;

/* one partition phase B builds and swaps in */
typedef struct SwapPart
{
	Oid old;		 /* the partition it replaces; 0: a new one */
	bool is_default; /* it replaces the DEFAULT partition */
	int32 gap;		 /* a new partition: the gap, period or value (list) */
	int64 period;	 /* of its rows in the batch table */
	Datum value;
	char *label;		 /* a new partition: its name's suffix */
	char *nsp;			 /* its schema */
	char *name;			 /* its name, once swapped in */
	char *staging;		 /* the staging table's name, then its SQL */
	char *staging_sql;	 /* the staging table, qualified */
	char *bound;		 /* FOR VALUES ... | DEFAULT */
	char *qual;			 /* the partition constraint */
	List *index_renames; /* pairs of index names: staging, final */
	int64 rows;			 /* rows the batch table has for it */
} SwapPart;

/* ------------------------------------------------------------------------
 * The partition key and the definition's checks
 * ------------------------------------------------------------------------
 */

typedef struct IntervalErrorArg
{
	const char *pipeline;
	const char *value;
} IntervalErrorArg;

/*
 * interval_error_callback names the option whose value failed to parse.
 */
static void
interval_error_callback(void *arg)
{
	IntervalErrorArg *a = arg;

	errcontext("options.partition_interval \"%s\" of pipeline \"%s\"",
			   a->value, a->pipeline);
}

/*
 * bad_interval raises 22023 for a partition_interval the key cannot use.
 */
static void
bad_interval(EtlPipeline *p, const char *value, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid partition_interval \"%s\" of pipeline \"%s\"",
					value, p->name),
			 errdetail("%s", why),
			 errhint("Use e.g. options => '{\"partition_interval\": \"1 "
					 "month\"}' for a date or timestamp key, or '{\"partition_"
					 "interval\": \"1000\"}' for an integer key.")));
}

/*
 * swap_interval reads options.partition_interval of p for a range key k
 * (its type set): k->period and k->width.
 */
static void
swap_interval(EtlPipeline *p, EtlSwapKey *k, const char *target)
{
	char *s = etl_option_text(p, "partition_interval", NULL);
	IntervalErrorArg arg = { p->name, s };
	ErrorContextCallback cb = { error_context_stack, interval_error_callback,
								&arg };
	Interval *iv;

	k->period = ETL_PERIOD_NONE;
	k->width = 0;
	if (s == NULL)
		return;
	if (k->strategy == PARTITION_STRATEGY_LIST)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("options.partition_interval of pipeline \"%s\" applies "
					"to range partitions, and target %s is partitioned by "
					"list",
					p->name, target),
			 errdetail("A list partition is created for each new value "
					   "of the partition key."),
			 errhint("Remove partition_interval from the options.")));

	switch (k->type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			error_context_stack = &cb;
			k->width = pg_strtoint64(s);
			error_context_stack = cb.previous;
			k->period = ETL_PERIOD_INTEGER;
			break;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			error_context_stack = &cb;
			iv = DatumGetIntervalP(DirectFunctionCall3(
				interval_in, CStringGetDatum(s), ObjectIdGetDatum(InvalidOid),
				Int32GetDatum(-1)));
			error_context_stack = cb.previous;
			if (iv->month != 0 && (iv->day != 0 || iv->time != 0))
				bad_interval(p, s,
							 "An interval is either whole months or a fixed "
							 "width (days and time), not both.");
			if (iv->month != 0)
			{
				k->period = ETL_PERIOD_MONTHS;
				k->width = iv->month;
			}
			else if (k->type == DATEOID)
			{
				if (iv->time % USECS_PER_DAY != 0)
					bad_interval(p, s,
								 "The partition key is a date: the interval "
								 "must be whole days or months.");
				k->period = ETL_PERIOD_DAYS;
				k->width = iv->day + iv->time / USECS_PER_DAY;
			}
			else
			{
				k->period = ETL_PERIOD_MICROSECONDS;
				k->width = iv->day * USECS_PER_DAY + iv->time;
			}
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("pipeline \"%s\" cannot create partitions of "
							"target %s by interval",
							p->name, target),
					 errdetail("Its partition key %s is of type %s; "
							   "partition_interval needs an integer, date, "
							   "timestamp or timestamptz key.",
							   k->column, format_type_be(k->type)),
					 errhint("Remove partition_interval and create the "
							 "partitions yourself, or add a DEFAULT "
							 "partition.")));
	}
	if (k->width <= 0)
		bad_interval(p, s, "The interval must be positive.");
}

/*
 * operator_sql returns OPERATOR(schema.name) of an operator.
 */
static char *
operator_sql(Oid opr)
{
	HeapTuple tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opr));
	Form_pg_operator o;
	char *result;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opr);
	o = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("OPERATOR(%s.%s)",
					  quote_identifier(get_namespace_name(o->oprnamespace)),
					  NameStr(o->oprname));
	ReleaseSysCache(tup);
	return result;
}

/*
 * swap_key reads and checks the partition key of rel, the target of p's
 * load partition_swap: partitioned by range or list on one column whose
 * operator class is its type's default (width_bucket() then orders values
 * as the partitions do), and options.partition_interval valid for it.
 * Each refusal names the target and says what to do.
 */
static void
swap_key(EtlPipeline *p, Relation rel, EtlSwapKey *k)
{
	const char *target = p->target;
	PartitionKey key;
	Oid opclass;
	Oid eq;

	if (rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("load partition_swap needs a partitioned target, and "
						"%s is not partitioned",
						target),
				 errdetail("The load rebuilds the partitions a batch touches "
						   "and swaps them in."),
				 errhint("Partition the target by range or list (CREATE "
						 "TABLE ... PARTITION BY RANGE (column)), or use load "
						 "=> 'merge'.")));
	key = RelationGetPartitionKey(rel);
	if (key->strategy == PARTITION_STRATEGY_HASH)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("load partition_swap cannot rebuild the hash "
						"partitions of target %s",
						target),
				 errdetail("Hash partitioning spreads the rows of any range "
						   "of keys over every partition: each batch would "
						   "rebuild them all."),
				 errhint("Use load => 'merge', or partition the target by "
						 "range or list.")));
	if (key->partnatts != 1 || key->partattrs[0] == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("load partition_swap needs a target partitioned by "
						"one column, and %s is partitioned by %s",
						target,
						TextDatumGetCString(DirectFunctionCall1(
							pg_get_partkeydef,
							ObjectIdGetDatum(RelationGetRelid(rel))))),
				 errhint("Use load => 'merge' for this target.")));

	k->strategy = key->strategy;
	k->attnum = key->partattrs[0];
	k->column =
		quote_identifier(get_attname(RelationGetRelid(rel), k->attnum, false));
	k->type = key->parttypid[0];
	k->typmod = key->parttypmod[0];
	k->collation = key->partcollation[0];

	opclass = GetDefaultOpClass(k->type, BTREE_AM_OID);
	if (!OidIsValid(opclass) ||
		get_opclass_family(opclass) != key->partopfamily[0])
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("load partition_swap cannot route rows of target %s",
						target),
				 errdetail("Its partition key %s orders values with an "
						   "operator class other than the default one of "
						   "type %s.",
						   k->column, format_type_be(k->type)),
				 errhint("Use load => 'merge' for this target.")));
	eq = get_opfamily_member(key->partopfamily[0], key->partopcintype[0],
							 key->partopcintype[0], BTEqualStrategyNumber);
	if (!OidIsValid(eq))
		elog(ERROR, "etl_ext: no equality operator in operator family %u",
			 key->partopfamily[0]);
	k->eq_sql = operator_sql(eq);
	k->type_sql = format_type_extended(k->type, k->typmod,
									   FORMAT_TYPE_TYPEMOD_GIVEN |
										   FORMAT_TYPE_FORCE_QUALIFY);
	k->collate_sql =
		OidIsValid(k->collation)
			? psprintf(" COLLATE %s", generate_collation_name(k->collation))
			: "";
	swap_interval(p, k, target);
}

/*
 * check_partition checks that a partition of the target can be rebuilt by
 * p: a plain table, owned by the pipeline owner (or a role it is a member
 * of).  Not rebuilt (at definition), only a plain table's owner is
 * checked: a foreign or partitioned partition matters once a batch
 * touches it.
 */
static void
check_partition(EtlPipeline *p, Oid part, bool rebuilt)
{
	char kind = get_rel_relkind(part);
	char *name = etl_relation_sql(part);
	HeapTuple tup;
	Oid owner;

	if (!rebuilt && kind != RELKIND_RELATION)
		return;
	if (kind != RELKIND_RELATION)
		ereport(
			ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("load partition_swap cannot rebuild partition %s of "
					"target %s",
					name, p->target),
			 errdetail("It is %s, not a table.",
					   kind == RELKIND_PARTITIONED_TABLE ? "partitioned itself"
														 : "a foreign table"),
			 errhint("Use load => 'merge' for this target.")));
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(part));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", part);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	if (!pg_class_ownercheck(part, p->owner))
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("load partition_swap needs the owner of pipeline "
					"\"%s\" to own partition %s",
					p->name, name),
			 errdetail("The partition belongs to role \"%s\"; rebuilding "
					   "it drops it, which only its owner may do.",
					   GetUserNameFromId(owner, false)),
			 errhint("ALTER TABLE %s OWNER TO %s;", name,
					 quote_identifier(GetUserNameFromId(p->owner, false)))));
}

/*
 * etl_swap_check_definition checks what load partition_swap needs of a
 * pipeline's target (etl_create_pipeline, etl_alter_pipeline): the
 * partition key (swap_key()), the pipeline owner owning the target and its
 * partitions and allowed to create tables in its schema, nothing a swap
 * would break (etl_swap_check_target()), the transform producing the
 * partition key column.  Runs under the pinned settings.
 */
void
etl_swap_check_definition(EtlPipeline *p, Oid source, Oid target)
{
	Relation rel = table_open(target, AccessShareLock);
	EtlSwapKey k;
	EtlColumnMap *map;
	PartitionDesc pd;
	char *owner = GetUserNameFromId(p->owner, false);
	bool loaded = false;
	ListCell *lc;

	swap_key(p, rel, &k);
	if (!pg_class_ownercheck(target, p->owner))
		ereport(
			ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("load partition_swap needs the owner of pipeline "
					"\"%s\" to own target %s",
					p->name, p->target),
			 errdetail("The target belongs to role \"%s\", not to \"%s\"; "
					   "detaching, attaching and dropping its partitions "
					   "is for its owner only.",
					   GetUserNameFromId(rel->rd_rel->relowner, false), owner),
			 errhint("Create the pipeline as the target's owner, or ALTER "
					 "TABLE %s OWNER TO %s;",
					 p->target, quote_identifier(owner))));
	if (pg_namespace_aclcheck(RelationGetNamespace(rel), p->owner,
							  ACL_CREATE) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("load partition_swap needs the owner of pipeline "
						"\"%s\" to create tables in schema %s",
						p->name,
						quote_identifier(
							get_namespace_name(RelationGetNamespace(rel)))),
				 errdetail("New and rebuilt partitions are built there."),
				 errhint("GRANT CREATE ON SCHEMA %s TO %s;",
						 quote_identifier(
							 get_namespace_name(RelationGetNamespace(rel))),
						 quote_identifier(owner))));
	pd = RelationGetPartitionDesc(rel, true);
	for (int i = 0; i < pd->nparts; i++)
		check_partition(p, pd->oids[i], false);
	etl_swap_check_target(p, rel);

	map = etl_resolve_columns(p, source, target);
	foreach (lc, map->columns)
		if (((EtlColumn *) lfirst(lc))->attnum == k.attnum)
			loaded = true;
	if (!loaded)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_COLUMN_REFERENCE),
				 errmsg("pipeline \"%s\" does not load the partition key %s "
						"of target %s",
						p->name, k.column, p->target),
				 errdetail("Load partition_swap places each row in its "
						   "partition by that column."),
				 errhint("Produce column %s in the transform.", k.column)));
	table_close(rel, AccessShareLock);
}

/* ------------------------------------------------------------------------
 * Routing
 * ------------------------------------------------------------------------
 */

/*
 * swap_route reads the target's partitions now (PartitionDesc): for a
 * range key the finite bounds in order and the partition of each bucket
 * between them (the bucket of a value is width_bucket(value, bounds), the
 * number of bounds at or below it), for a list key the values in order
 * and the partition of each; the NULL and DEFAULT partitions.
 */
static void
swap_route(Relation rel, EtlSwapKey *k, SwapRoute *r)
{
	PartitionKey key = RelationGetPartitionKey(rel);
	PartitionDesc pd = RelationGetPartitionDesc(rel, true);
	PartitionBoundInfo bi = pd->boundinfo;
	int first = 0;
	int last;

	memset(r, 0, sizeof(*r));
	if (pd->nparts == 0 || bi == NULL)
	{
		r->nparts = k->strategy == PARTITION_STRATEGY_RANGE ? 1 : 0;
		r->parts = palloc0(sizeof(Oid));
		return;
	}
	if (bi->default_index >= 0)
		r->default_part = pd->oids[bi->default_index];
	last = bi->ndatums;
	if (k->strategy == PARTITION_STRATEGY_RANGE)
	{
		/* a MINVALUE lower bound is at or below every value, MAXVALUE above */
		if (last > 0 && bi->kind[0][0] == PARTITION_RANGE_DATUM_MINVALUE)
			first = 1;
		if (last > first &&
			bi->kind[last - 1][0] == PARTITION_RANGE_DATUM_MAXVALUE)
			last--;
	}
	r->nbounds = last - first;
	r->bounds = palloc(Max(r->nbounds, 1) * sizeof(Datum));
	for (int i = 0; i < r->nbounds; i++)
		r->bounds[i] = datumCopy(bi->datums[first + i][0],
								 key->parttypbyval[0], key->parttyplen[0]);
	if (k->strategy == PARTITION_STRATEGY_RANGE)
	{
		/* the partition whose upper bound is the next datum, as
		 * get_partition_for_tuple() finds it */
		r->nparts = r->nbounds + 1;
		r->parts = palloc0(r->nparts * sizeof(Oid));
		for (int b = 0; b < r->nparts; b++)
		{
			int idx = bi->indexes[b + first];

			r->parts[b] = idx >= 0 ? pd->oids[idx] : InvalidOid;
		}
	}
	else
	{
		r->nparts = r->nbounds;
		r->parts = palloc0(Max(r->nparts, 1) * sizeof(Oid));
		for (int i = 0; i < r->nparts; i++)
			r->parts[i] = pd->oids[bi->indexes[i]];
		if (bi->null_index >= 0)
			r->null_part = pd->oids[bi->null_index];
	}
}

/*
 * swap_route_args appends the route's arguments (etl_deparse_swap_fill()):
 * the bounds or values (an array of the key's type), the partitions
 * (oid[], NULL for a gap), the DEFAULT and the NULL partition, the width of
 * a period of options.partition_interval.
 */
static void
swap_route_args(EtlSwapKey *k, SwapRoute *r, EtlArgs *args)
{
	int16 typlen;
	bool typbyval;
	char typalign;
	Oid arraytype = get_array_type(k->type);
	Datum *parts = palloc(Max(r->nparts, 1) * sizeof(Datum));
	bool *nulls = palloc(Max(r->nparts, 1) * sizeof(bool));
	int dims[1] = { r->nparts };
	int lbs[1] = { 1 };
	ArrayType *bounds;
	ArrayType *partarr;

	if (!OidIsValid(arraytype))
		elog(ERROR, "etl_ext: type %s has no array type",
			 format_type_be(k->type));
	get_typlenbyvalalign(k->type, &typlen, &typbyval, &typalign);
	bounds = r->nbounds > 0 ? construct_array(r->bounds, r->nbounds, k->type,
											  typlen, typbyval, typalign)
							: construct_empty_array(k->type);
	for (int i = 0; i < r->nparts; i++)
	{
		parts[i] = ObjectIdGetDatum(r->parts[i]);
		nulls[i] = !OidIsValid(r->parts[i]);
	}
	partarr = r->nparts > 0
				  ? construct_md_array(parts, nulls, 1, dims, lbs, OIDOID,
									   sizeof(Oid), true, TYPALIGN_INT)
				  : construct_empty_array(OIDOID);
	etl_args_add(args, arraytype, PointerGetDatum(bounds), false);
	etl_args_add(args, OIDARRAYOID, PointerGetDatum(partarr), false);
	etl_args_add(args, OIDOID, ObjectIdGetDatum(r->default_part),
				 !OidIsValid(r->default_part));
	etl_args_add(args, OIDOID, ObjectIdGetDatum(r->null_part),
				 !OidIsValid(r->null_part));
	etl_args_add_int8(args, k->width);
}

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

/* ------------------------------------------------------------------------
 * Phase A: the batch table
 * ------------------------------------------------------------------------
 */

/*
 * key_is_unique tells whether the target has a unique index on exactly
 * the pipeline's key columns.
 */
static bool
key_is_unique(EtlRun *run)
{
	Relation rel = table_open(run->target_relid, AccessShareLock);
	List *indexes = RelationGetIndexList(rel);
	int nkeys = list_length(run->p->key);
	bool found = false;
	ListCell *lc;

	foreach (lc, indexes)
	{
		HeapTuple tup =
			SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index x;
		int matched = 0;

		if (!HeapTupleIsValid(tup))
			continue;
		x = (Form_pg_index) GETSTRUCT(tup);
		if (x->indisunique && x->indnkeyatts == nkeys &&
			heap_attisnull(tup, Anum_pg_index_indexprs, NULL) &&
			heap_attisnull(tup, Anum_pg_index_indpred, NULL))
		{
			ListCell *kc;

			foreach (kc, run->p->key)
			{
				AttrNumber att = get_attnum(run->target_relid, lfirst(kc));

				for (int i = 0; i < nkeys; i++)
					if (x->indkey.values[i] == att)
						matched++;
			}
		}
		ReleaseSysCache(tup);
		if (matched == nkeys)
		{
			found = true;
			break;
		}
	}
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * swap_batch returns the name of the run's batch table in pg_temp; when it
 * does not exist (not yet, or its creation was rolled back with a failed
 * chunk), NULL, or with create, it creates it.  Runs as the pipeline owner.
 */
static char *
swap_batch(EtlRun *run, bool create)
{
	char *name = psprintf("etl_batch_" INT64_FORMAT, run->rec.run_id);
	Oid nsp = LookupExplicitNamespace("pg_temp", true);
	Oid userid;
	int sec;

	if (OidIsValid(nsp) && OidIsValid(get_relname_relid(name, nsp)))
		return name;
	if (!create)
		return NULL;

	/* without the security-restricted flag, which forbids creating the
	 * session's temporary schema; the statement runs no user code */
	GetUserIdAndSecContext(&userid, &sec);
	SetUserIdAndSecContext(userid, sec & ~SECURITY_RESTRICTED_OPERATION);
	etl_spi_exec(etl_deparse_swap_batch_create(run, name), NULL,
				 SPI_OK_UTILITY, InvalidSnapshot);
	SetUserIdAndSecContext(userid, sec);
	etl_spi_exec(etl_deparse_swap_batch_shape(run, name), NULL, SPI_OK_UTILITY,
				 InvalidSnapshot);
	if (key_is_unique(run))
		etl_spi_exec(etl_deparse_swap_batch_key(run, name), NULL,
					 SPI_OK_UTILITY, InvalidSnapshot);
	return name;
}

/*
 * target_is_empty tells whether the target had no row when this attempt's
 * load began (asked once per attempt, as load.c does).
 */
static bool
target_is_empty(EtlRun *run)
{
	if (run->target_empty < 0)
		run->target_empty = etl_spi_exec(etl_deparse_target_probe(run), NULL,
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
	SwapRoute r;
	EtlArgs args;
	Relation rel;
	char *batch;
	bool isnull;

	memset(c, 0, sizeof(*c));
	if (!empty)
	{
		etl_run_args(run, &args);
		etl_spi_query_parallel(etl_deparse_classify(run), &args,
							   run->snapshot);
		c->batch = etl_spi_int64(0, 0, 0);
		c->inserted = etl_spi_int64(0, 1, 0);
		c->updated = etl_spi_int64(0, 2, 0);
		c->unchanged = c->batch - c->inserted - c->updated;
	}

	if (empty || c->inserted + c->updated > 0)
	{
		batch = swap_batch(run, true);
		etl_spi_exec(etl_deparse_lock(run->target_sql, "SHARE ROW EXCLUSIVE"),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		rel = table_open(run->target_relid, AccessShareLock);
		swap_key(run->p, rel, &k);
		swap_route(rel, &k, &r);
		table_close(rel, AccessShareLock);

		etl_run_args(run, &args);
		swap_route_args(&k, &r, &args);
		etl_spi_exec(
			etl_deparse_swap_fill(run, batch, &k, !empty,
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

/* ------------------------------------------------------------------------
 * Phase B: staging tables and the swap
 * ------------------------------------------------------------------------
 */

/*
 * period_start returns the first value of a period of the interval, of the
 * key's type (see the header: periods count from 1970-01-01 00:00, UTC).
 */
static Datum
period_start(EtlRun *run, EtlSwapKey *k, int64 period)
{
	int64 v;
	int64 days;
	int64 year;
	int64 month;

	switch (k->period)
	{
		case ETL_PERIOD_INTEGER:
			if (pg_mul_s64_overflow(period, k->width, &v))
				break;
			if (k->type == INT2OID && v >= PG_INT16_MIN && v <= PG_INT16_MAX)
				return Int16GetDatum((int16) v);
			if (k->type == INT4OID && v >= PG_INT32_MIN && v <= PG_INT32_MAX)
				return Int32GetDatum((int32) v);
			if (k->type == INT8OID)
				return Int64GetDatum(v);
			break;
		case ETL_PERIOD_DAYS:
			if (pg_mul_s64_overflow(period, k->width, &v) ||
				pg_add_s64_overflow(v, UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE,
									&v) ||
				v < PG_INT32_MIN || v > PG_INT32_MAX ||
				!IS_VALID_DATE((DateADT) v))
				break;
			return DateADTGetDatum((DateADT) v);
		case ETL_PERIOD_MICROSECONDS:
			if (pg_mul_s64_overflow(period, k->width, &v) ||
				pg_add_s64_overflow(v,
									(UNIX_EPOCH_JDATE - POSTGRES_EPOCH_JDATE) *
										USECS_PER_DAY,
									&v) ||
				!IS_VALID_TIMESTAMP(v))
				break;
			return TimestampGetDatum(v);
		case ETL_PERIOD_MONTHS:
			if (pg_mul_s64_overflow(period, k->width, &v))
				break;
			year = v / 12;
			month = v % 12;
			if (month < 0)
			{
				month += 12;
				year--;
			}
			year += 1970;
			if (year < -4713 || year > 5874897)
				break;
			days =
				date2j((int) year, (int) month + 1, 1) - POSTGRES_EPOCH_JDATE;
			if (k->type == DATEOID)
			{
				if (!IS_VALID_DATE((DateADT) days))
					break;
				return DateADTGetDatum((DateADT) days);
			}
			v = days * USECS_PER_DAY;
			if (!IS_VALID_TIMESTAMP(v))
				break;
			return TimestampGetDatum(v);
		default:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("a partition of target %s for period " INT64_FORMAT
					" of partition_interval is out of the range of type %s",
					run->p->target, period, format_type_be(k->type)),
			 errhint("Create the partition yourself.")));
	return (Datum) 0; /* keep compiler quiet */
}

/*
 * bound_label returns the suffix of the name of a new partition: "p" and
 * its lower bound (p20240101, p20240101_0600, p1000, pm1000), or its value
 * (list) with characters other than letters, digits and _ as _.
 */
static char *
bound_label(EtlSwapKey *k, Datum v)
{
	struct pg_tm tm;
	fsec_t fsec;
	int y;
	int m;
	int d;
	int64 i;
	char *s;
	Oid typout;
	bool varlena;

	switch (k->type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			i = k->type == INT2OID	 ? DatumGetInt16(v)
				: k->type == INT4OID ? DatumGetInt32(v)
									 : DatumGetInt64(v);
			return i < 0
					   ? psprintf("pm" UINT64_FORMAT, (uint64) 0 - (uint64) i)
					   : psprintf("p" INT64_FORMAT, i);
		case DATEOID:
			j2date(DatumGetDateADT(v) + POSTGRES_EPOCH_JDATE, &y, &m, &d);
			return psprintf("p%04d%02d%02d", y, m, d);
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			/* no time zone: timestamptz in UTC */
			if (timestamp2tm(DatumGetTimestamp(v), NULL, &tm, &fsec, NULL,
							 NULL) != 0)
				return "p";
			s = psprintf("p%04d%02d%02d", tm.tm_year, tm.tm_mon, tm.tm_mday);
			if (tm.tm_hour || tm.tm_min || tm.tm_sec || fsec)
				s = psprintf("%s_%02d%02d%s", s, tm.tm_hour, tm.tm_min,
							 tm.tm_sec || fsec ? psprintf("%02d", tm.tm_sec)
											   : "");
			return s;
		default:
			getTypeOutputInfo(k->type, &typout, &varlena);
			s = OidOutputFunctionCall(typout, v);
			for (char *c = s; *c; c++)
				if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
					  (*c >= '0' && *c <= '9') || *c == '_'))
					*c = '_';
			if (strlen(s) > 40)
				s[40] = '\0';
			return s[0] ? s : "v";
	}
}

/*
 * datum_cmp compares two values of the key's type as its partitions do.
 */
static int
datum_cmp(EtlSwapKey *k, Datum a, Datum b)
{
	TypeCacheEntry *tc = lookup_type_cache(k->type, TYPECACHE_CMP_PROC_FINFO);

	return DatumGetInt32(
		FunctionCall2Coll(&tc->cmp_proc_finfo, k->collation, a, b));
}

/*
 * key_const returns a value of the key's type as a Const.
 */
static Const *
key_const(Relation rel, Datum v)
{
	PartitionKey key = RelationGetPartitionKey(rel);

	return makeConst(key->parttypid[0], key->parttypmod[0],
					 key->parttypcoll[0], key->parttyplen[0], v, false,
					 key->parttypbyval[0]);
}

/*
 * range_datum wraps a bound value for a PartitionBoundSpec.
 */
static PartitionRangeDatum *
range_datum(Relation rel, Datum v)
{
	PartitionRangeDatum *d = makeNode(PartitionRangeDatum);

	d->kind = PARTITION_RANGE_DATUM_VALUE;
	d->value = (Node *) key_const(rel, v);
	d->location = -1;
	return d;
}

/*
 * new_part makes the partition to create for the rows of the batch table
 * in gap with period (range) or value (list): its bound (the period cut
 * where the gap's neighbours begin and end, or the value) and constraint.
 */
static SwapPart *
new_part(EtlRun *run, Relation rel, EtlSwapKey *k, SwapRoute *r, int32 gap,
		 int64 period, Datum value)
{
	SwapPart *part = palloc0(sizeof(SwapPart));
	PartitionBoundSpec *spec = makeNode(PartitionBoundSpec);

	part->gap = gap;
	part->period = period;
	part->value = value;
	part->nsp = get_namespace_name(RelationGetNamespace(rel));
	spec->strategy = k->strategy;
	spec->location = -1;
	if (k->strategy == PARTITION_STRATEGY_LIST)
	{
		spec->listdatums = list_make1(key_const(rel, value));
		part->label = bound_label(k, value);
	}
	else
	{
		Datum lo = period_start(run, k, period);
		Datum hi = period_start(run, k, period + 1);

		/* bucket gap lies between bounds gap - 1 and gap */
		if (gap >= 1 && gap - 1 < r->nbounds &&
			datum_cmp(k, r->bounds[gap - 1], lo) > 0)
			lo = r->bounds[gap - 1];
		if (gap < r->nbounds && datum_cmp(k, r->bounds[gap], hi) < 0)
			hi = r->bounds[gap];
		spec->lowerdatums = list_make1(range_datum(rel, lo));
		spec->upperdatums = list_make1(range_datum(rel, hi));
		part->label = bound_label(k, lo);
	}
	part->bound = etl_deparse_partition_bound(rel, spec, &part->qual);
	return part;
}

/*
 * existing_part returns the entry of partition oid in *parts, adding it
 * (its bound clause and partition constraint as PostgreSQL deparses them)
 * when it is not there yet.
 */
static SwapPart *
existing_part(EtlRun *run, Relation rel, SwapRoute *r, List **parts, Oid oid)
{
	SwapPart *part;
	HeapTuple tup;
	Datum bound;
	bool isnull;
	ListCell *lc;

	foreach (lc, *parts)
		if (((SwapPart *) lfirst(lc))->old == oid)
			return lfirst(lc);
	check_partition(run->p, oid, true);
	part = palloc0(sizeof(SwapPart));
	part->old = oid;
	part->is_default = oid == r->default_part;
	part->nsp = get_namespace_name(get_rel_namespace(oid));
	part->name = get_rel_name(oid);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(oid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", oid);
	bound = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relpartbound, &isnull);
	if (isnull)
		elog(ERROR, "etl_ext: relation %u has no partition bound", oid);
	part->bound = TextDatumGetCString(DirectFunctionCall2(
		pg_get_expr, bound, ObjectIdGetDatum(RelationGetRelid(rel))));
	ReleaseSysCache(tup);
	part->qual = TextDatumGetCString(DirectFunctionCall1(
		pg_get_partition_constraintdef, ObjectIdGetDatum(oid)));
	*parts = lappend(*parts, part);
	return part;
}

/*
 * swap_parts lists the partitions phase B builds: those the batch table's
 * rows go to (existing or new) and those it moves rows out of.
 */
static List *
swap_parts(EtlRun *run, Relation rel, const char *batch, EtlSwapKey *k,
		   SwapRoute *r)
{
	List *parts = NIL;
	uint64 n;
	Oid *dest;
	int32 *gap;
	int64 *period;
	Datum *value;
	int64 *rows;
	int16 typlen;
	bool typbyval;

	get_typlenbyval(k->type, &typlen, &typbyval);
	n = etl_spi_exec(etl_deparse_swap_groups(batch, k), NULL, SPI_OK_SELECT,
					 InvalidSnapshot);
	dest = palloc0(Max(n, 1) * sizeof(Oid));
	gap = palloc0(Max(n, 1) * sizeof(int32));
	period = palloc0(Max(n, 1) * sizeof(int64));
	value = palloc0(Max(n, 1) * sizeof(Datum));
	rows = palloc0(Max(n, 1) * sizeof(int64));
	for (uint64 i = 0; i < n; i++)
	{
		bool isnull;
		Datum d = etl_spi_datum(i, 0, &isnull);

		rows[i] = etl_spi_int64(i, 3, 0);
		if (!isnull)
		{
			dest[i] = DatumGetObjectId(d);
			continue;
		}
		gap[i] = (int32) etl_spi_int64(i, 1, 0);
		d = etl_spi_datum(i, 2, &isnull);
		if (k->strategy == PARTITION_STRATEGY_LIST)
			value[i] = datumCopy(d, typbyval, typlen);
		else
			period[i] = DatumGetInt64(d);
	}
	for (uint64 i = 0; i < n; i++)
	{
		SwapPart *part;

		if (OidIsValid(dest[i]))
			part = existing_part(run, rel, r, &parts, dest[i]);
		else
		{
			part = new_part(run, rel, k, r, gap[i], period[i], value[i]);
			parts = lappend(parts, part);
		}
		part->rows += rows[i];
	}

	n = etl_spi_exec(etl_deparse_swap_movers(batch), NULL, SPI_OK_SELECT,
					 InvalidSnapshot);
	dest = palloc0(Max(n, 1) * sizeof(Oid));
	for (uint64 i = 0; i < n; i++)
	{
		bool isnull;

		dest[i] = DatumGetObjectId(etl_spi_datum(i, 0, &isnull));
	}
	for (uint64 i = 0; i < n; i++)
		(void) existing_part(run, rel, r, &parts, dest[i]);
	return parts;
}

/*
 * rel_acl returns a relation's ACL (NULL: the default) and its owner.
 */
static Acl *
rel_acl(Oid relid, Oid *owner)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Datum d;
	bool isnull;
	Acl *acl = NULL;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	*owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	d = SysCacheGetAttr(RELOID, tup, Anum_pg_class_relacl, &isnull);
	if (!isnull)
		acl = DatumGetAclPCopy(d);
	ReleaseSysCache(tup);
	return acl;
}

/*
 * copy_privileges gives a staging table the owner and grants of template:
 * the grants it got from default privileges are revoked, those of the
 * template granted (by the owner).
 */
static void
copy_privileges(SwapPart *part, Oid staging, Oid template)
{
	Oid owner;
	Oid cur_owner;
	Acl *acl = rel_acl(template, &owner);
	Acl *cur = rel_acl(staging, &cur_owner);

	if (cur_owner != owner)
	{
		etl_spi_exec(etl_deparse_set_owner(part->staging_sql, owner), NULL,
					 SPI_OK_UTILITY, InvalidSnapshot);
		cur = rel_acl(staging, &cur_owner);
	}
	if (cur != NULL)
	{
		AclItem *items = ACL_DAT(cur);

		for (int i = 0; i < ACL_NUM(cur); i++)
			if (items[i].ai_grantee != owner)
				etl_spi_exec(etl_deparse_revoke_all(part->staging_sql,
													items[i].ai_grantee),
							 NULL, SPI_OK_UTILITY, InvalidSnapshot);
	}
	if (acl != NULL)
	{
		AclItem *items = ACL_DAT(acl);

		for (int i = 0; i < ACL_NUM(acl); i++)
		{
			AclMode privs = ACLITEM_GET_PRIVS(items[i]);
			AclMode options = ACLITEM_GET_GOPTIONS(items[i]);

			if (items[i].ai_grantee == owner)
				continue;
			if (privs & ~options)
				etl_spi_exec(etl_deparse_grant(part->staging_sql,
											   privs & ~options,
											   items[i].ai_grantee, false),
							 NULL, SPI_OK_UTILITY, InvalidSnapshot);
			if (options)
				etl_spi_exec(etl_deparse_grant(part->staging_sql, options,
											   items[i].ai_grantee, true),
							 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		}
	}
}

/*
 * build_indexes gives a staging table the indexes of template, built on
 * its rows: primary key, unique and exclusion constraints from their
 * definitions, other indexes from theirs.  Replacing a partition, they get
 * temporary names, and the pairs (temporary, final) go to
 * part->index_renames; for a new partition PostgreSQL names them.
 */
static void
build_indexes(SwapPart *part, Oid template, Oid nsp)
{
	Relation rel = table_open(template, AccessShareLock);
	List *indexes = RelationGetIndexList(rel);
	ListCell *lc;

	table_close(rel, AccessShareLock);
	foreach (lc, indexes)
	{
		Oid index = lfirst_oid(lc);
		Oid constraint = get_index_constraint(index);
		char *name = NULL;
		char contype = 0;

		if (OidIsValid(part->old))
		{
			name =
				ChooseRelationName(part->staging, NULL, "etl_idx", nsp, false);
			part->index_renames = lappend(part->index_renames, name);
			part->index_renames =
				lappend(part->index_renames, get_rel_name(index));
		}
		if (OidIsValid(constraint))
		{
			HeapTuple tup =
				SearchSysCache1(CONSTROID, ObjectIdGetDatum(constraint));

			if (HeapTupleIsValid(tup))
			{
				contype = ((Form_pg_constraint) GETSTRUCT(tup))->contype;
				ReleaseSysCache(tup);
			}
		}
		if (contype == CONSTRAINT_PRIMARY || contype == CONSTRAINT_UNIQUE ||
			contype == CONSTRAINT_EXCLUSION)
			etl_spi_exec(etl_deparse_swap_constraint(constraint,
													 part->staging_sql, name),
						 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		else
			etl_spi_exec(
				etl_deparse_swap_index(index, part->staging_sql, name), NULL,
				SPI_OK_UTILITY, InvalidSnapshot);
	}
}

/*
 * build_part builds the staging table of a partition: created like the
 * partition (or, new, like the target) with the CHECK constraint of its
 * bound, owned and granted like it, filled with the partition's rows the
 * batch leaves and the batch's rows for it (read with snapshot), indexed,
 * analysed.  It gets no foreign key: ATTACH clones the target's (see
 * swap_in()).
 */
static void
build_part(EtlRun *run, Relation rel, const char *batch, EtlSwapKey *k,
		   SwapPart *part, Snapshot snapshot)
{
	Oid nsp = get_namespace_oid(part->nsp, false);
	Oid template = OidIsValid(part->old) ? part->old : RelationGetRelid(rel);
	EtlArgs args;
	char *filter;
	char *changed;
	char *comment;
	Oid staging;

	if (OidIsValid(part->old))
		part->staging =
			ChooseRelationName(part->name, NULL, "etl_swap", nsp, false);
	else
		part->staging = part->name = ChooseRelationName(
			RelationGetRelationName(rel), NULL, part->label, nsp, false);
	part->staging_sql = quote_qualified_identifier(part->nsp, part->staging);
	etl_spi_exec(
		etl_deparse_swap_staging(part->staging_sql, template, part->qual),
		NULL, SPI_OK_UTILITY, InvalidSnapshot);
	staging = get_relname_relid(part->staging, nsp);
	copy_privileges(part, staging, template);
	if (OidIsValid(part->old) &&
		(comment = GetComment(part->old, RelationRelationId, 0)) != NULL)
		etl_spi_exec(etl_deparse_comment(part->staging_sql, comment), NULL,
					 SPI_OK_UTILITY, InvalidSnapshot);

	if (OidIsValid(part->old))
		etl_spi_exec(etl_deparse_swap_keep(run, part->staging_sql,
										   etl_relation_sql(part->old), batch),
					 NULL, SPI_OK_INSERT, snapshot);

	etl_args_init(&args);
	if (OidIsValid(part->old))
		etl_args_add(&args, OIDOID, ObjectIdGetDatum(part->old), false);
	else if (k->strategy == PARTITION_STRATEGY_LIST)
		etl_args_add(&args, k->type, part->value, false);
	else
	{
		etl_args_add(&args, INT4OID, Int32GetDatum(part->gap), false);
		etl_args_add_int8(&args, part->period);
	}
	filter = etl_deparse_swap_filter(k, !OidIsValid(part->old), 1);
	changed = etl_deparse_swap_add(run, part->staging_sql, batch, filter, 2);
	if (changed == NULL)
		etl_spi_exec(
			etl_deparse_swap_add(run, part->staging_sql, batch, filter, 0),
			&args, SPI_OK_INSERT, snapshot);
	else
	{
		etl_spi_exec(
			etl_deparse_swap_add(run, part->staging_sql, batch, filter, 1),
			&args, SPI_OK_INSERT, snapshot);
		etl_spi_exec(changed, &args, SPI_OK_INSERT, snapshot);
	}

	build_indexes(part, template, nsp);
	etl_spi_exec(
		etl_deparse_swap_step(ETL_SWAP_ANALYZE, NULL, part->staging_sql, NULL),
		NULL, SPI_OK_UTILITY, InvalidSnapshot);
}

/*
 * swap_in swaps the staging tables in: DROP the partitions they replace
 * (no DETACH first: a detached partition gets foreign key triggers of its
 * own on the referenced tables, whose removal locks those tables ACCESS
 * EXCLUSIVE), give the staging tables and their indexes the replaced ones'
 * names, ATTACH them (the DEFAULT partition last, so that the other
 * ATTACHes find no DEFAULT partition to scan when it is rebuilt too; ATTACH
 * also clones the target's foreign keys and validates them), drop the
 * CHECK constraints of the bounds.  A run with etl.debug_pause_at =
 * 'swap_dropped' waits between the DROPs and the ATTACHes (crash tests).
 */
static void
swap_in(EtlRun *run, List *parts)
{
	ListCell *lc;

	foreach (lc, parts)
	{
		SwapPart *part = lfirst(lc);
		ListCell *ic;

		if (!OidIsValid(part->old))
			continue;
		etl_spi_exec(etl_deparse_swap_step(ETL_SWAP_DROP, NULL,
										   etl_relation_sql(part->old), NULL),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		etl_spi_exec(etl_deparse_swap_step(ETL_SWAP_RENAME, NULL,
										   part->staging_sql, part->name),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
		part->staging_sql = quote_qualified_identifier(part->nsp, part->name);
		for (ic = list_head(part->index_renames); ic != NULL;
			 ic = lnext(part->index_renames, lnext(part->index_renames, ic)))
			etl_spi_exec(etl_deparse_swap_step(
							 ETL_SWAP_RENAME_INDEX, NULL,
							 quote_qualified_identifier(part->nsp, lfirst(ic)),
							 lfirst(lnext(part->index_renames, ic))),
						 NULL, SPI_OK_UTILITY, InvalidSnapshot);
	}
	etl_maybe_pause("swap_dropped");
	for (int pass = 0; pass <= 1; pass++)
		foreach (lc, parts)
		{
			SwapPart *part = lfirst(lc);

			if (part->is_default == (pass == 1))
				etl_spi_exec(
					etl_deparse_swap_step(ETL_SWAP_ATTACH, run->target_sql,
										  part->staging_sql, part->bound),
					NULL, SPI_OK_UTILITY, InvalidSnapshot);
		}
	foreach (lc, parts)
		etl_spi_exec(etl_deparse_swap_step(
						 ETL_SWAP_UNBOUND, NULL,
						 ((SwapPart *) lfirst(lc))->staging_sql, NULL),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
}

/*
 * least_locks returns the fewest locks the swap of parts must hold until
 * the transaction ends: every partition has at least the target's
 * indexes, and each table and index created (staging) or dropped
 * (replaced) is locked.
 */
static int64
least_locks(Relation rel, List *parts)
{
	int64 per_part = 1 + list_length(RelationGetIndexList(rel));
	int64 n = 0;
	ListCell *lc;

	foreach (lc, parts)
		n += OidIsValid(((SwapPart *) lfirst(lc))->old) ? 2 * per_part
														: per_part;
	return n;
}

/*
 * swap_rebuild is phase B for the batch table batch (etl_swap_finish()):
 * the partitions it touches are checked, rebuilt and swapped in, and the
 * batch table dropped.  *nparts gets the number of partitions as soon as
 * it is known.
 */
static void
swap_rebuild(EtlRun *run, const char *batch, int *nparts)
{
	Relation rel;
	EtlSwapKey k;
	SwapRoute r;
	List *parts;
	StringInfoData locks;
	Snapshot snapshot;
	instr_time start;
	instr_time built;
	instr_time swapped;
	int64 rows = 0;
	ListCell *lc;

	INSTR_TIME_SET_CURRENT(start);

	/* the target is locked SHARE ROW EXCLUSIVE: its partitions stay */
	rel = table_open(run->target_relid, AccessShareLock);
	etl_swap_check_target(run->p, rel);
	swap_key(run->p, rel, &k);
	swap_route(rel, &k, &r);
	parts = swap_parts(run, rel, batch, &k, &r);
	*nparts = list_length(parts);
	etl_swap_check_lock_slots(run->p, *nparts, least_locks(rel, parts));
	if (list_length(parts) > ETL_SWAP_SCANS)
	{
		etl_spi_exec(etl_deparse_swap_batch_index(batch, &k), NULL,
					 SPI_OK_UTILITY, InvalidSnapshot);
		etl_spi_exec(etl_deparse_swap_step(
						 ETL_SWAP_ANALYZE, NULL,
						 quote_qualified_identifier("pg_temp", batch), NULL),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
	}

	/* no one writes the partitions rebuilt; read them as they are now */
	initStringInfo(&locks);
	foreach (lc, parts)
	{
		SwapPart *part = lfirst(lc);

		if (OidIsValid(part->old))
			appendStringInfo(&locks, "%s%s", locks.len ? ", " : "",
							 etl_relation_sql(part->old));
	}
	if (locks.len > 0)
		etl_spi_exec(etl_deparse_lock(locks.data, "SHARE"), NULL,
					 SPI_OK_UTILITY, InvalidSnapshot);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	foreach (lc, parts)
	{
		build_part(run, rel, batch, &k, lfirst(lc), snapshot);
		rows += ((SwapPart *) lfirst(lc))->rows;
	}
	UnregisterSnapshot(snapshot);
	/* closed (the lock stays): ALTER TABLE refuses a relation in use */
	table_close(rel, NoLock);
	INSTR_TIME_SET_CURRENT(built);

	swap_in(run, parts);
	INSTR_TIME_SET_CURRENT(swapped);

	etl_spi_exec(etl_deparse_swap_step(
					 ETL_SWAP_DROP, NULL,
					 quote_qualified_identifier("pg_temp", batch), NULL),
				 NULL, SPI_OK_UTILITY, InvalidSnapshot);

	INSTR_TIME_SUBTRACT(swapped, built);
	INSTR_TIME_SUBTRACT(built, start);
	ereport(DEBUG1,
			(errmsg_internal("pipeline \"%s\": partition swap of %d "
							 "partitions (" INT64_FORMAT " rows from the "
							 "batch): built in %.3f ms, swapped in %.3f ms",
							 run->p->name, list_length(parts), rows,
							 INSTR_TIME_GET_MILLISEC(built),
							 INSTR_TIME_GET_MILLISEC(swapped))));
}

/*
 * etl_swap_finish is phase B: when the run's batch table holds rows, the
 * partitions they touch are rebuilt and swapped in, and the batch table is
 * dropped (swap_rebuild()).  Nothing to do otherwise (other loads, a batch
 * without new or changed rows, the whole batch already swapped by
 * etl_swap_load()).  Runs as the pipeline owner inside the attempt's
 * subtransaction; errors propagate, and running out of lock table slots
 * becomes an error that names max_locks_per_transaction and the limit.
 * The time to build and to swap goes to the server log at DEBUG1.
 */
void
etl_swap_finish(EtlRun *run)
{
	MemoryContext cxt = CurrentMemoryContext;
	char *batch;
	volatile int nparts = 0;

	if (run->p->load != ETL_LOAD_PARTITION_SWAP ||
		(batch = swap_batch(run, false)) == NULL)
		return;
	PG_TRY();
	{
		swap_rebuild(run, batch, (int *) &nparts);
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (etl_swap_out_of_lock_slots(edata))
		{
			FlushErrorState();
			etl_swap_lock_slots_error(run->p, nparts, 0);
		}
		FreeErrorData(edata);
		PG_RE_THROW();
	}
	PG_END_TRY();
}
