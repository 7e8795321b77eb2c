/*-------------------------------------------------------------------------
 *
 * swap_key.c
 *	  Load partition_swap (swap.c): the partition key of the target and
 *	  the definition's checks, the routing of batch rows to partitions,
 *	  and the run's batch table.
 *
 * IDENTIFICATION
 *	  src/loads/swap_key.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_operator.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "partitioning/partdesc.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"

#include "base/spi_util.h"
#include "loads/swap_guard.h"
#include "loads/swap_key.h"
#include "modes/mode.h"
#include "sql/columns.h"
#include "sql/deparse_swap.h"
#include "sql/names.h"
#include "sql/run_state.h"

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
 * etl_swap_key reads and checks the partition key of rel, the target of p's
 * load partition_swap: partitioned by range or list on one column whose
 * operator class is its type's default (width_bucket() then orders values
 * as the partitions do), and options.partition_interval valid for it.
 * Each refusal names the target and says what to do.
 */
void
etl_swap_key(EtlPipeline *p, Relation rel, EtlSwapKey *k)
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
 * etl_swap_check_partition checks that a partition of the target can be rebuilt by
 * p: a plain table, owned by the pipeline owner (or a role it is a member
 * of).  Not rebuilt (at definition), only a plain table's owner is
 * checked: a foreign or partitioned partition matters once a batch
 * touches it.
 */
void
etl_swap_check_partition(EtlPipeline *p, Oid part, bool rebuilt)
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
 * partition key (etl_swap_key()), the pipeline owner owning the target and its
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

	etl_swap_key(p, rel, &k);
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
		etl_swap_check_partition(p, pd->oids[i], false);
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

/*
 * etl_swap_route reads the target's partitions now (PartitionDesc): for a
 * range key the finite bounds in order and the partition of each bucket
 * between them (the bucket of a value is width_bucket(value, bounds), the
 * number of bounds at or below it), for a list key the values in order
 * and the partition of each; the NULL and DEFAULT partitions.
 */
void
etl_swap_route(Relation rel, EtlSwapKey *k, EtlSwapRoute *r)
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
 * etl_swap_route_args appends the route's arguments (etl_deparse_swap_fill()):
 * the bounds or values (an array of the key's type), the partitions
 * (oid[], NULL for a gap), the DEFAULT and the NULL partition, the width of
 * a period of options.partition_interval.
 */
void
etl_swap_route_args(EtlSwapKey *k, EtlSwapRoute *r, EtlArgs *args)
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
 * etl_swap_batch returns the name of the run's batch table in pg_temp; when it
 * does not exist (not yet, or its creation was rolled back with a failed
 * chunk), NULL, or with create, it creates it.  Runs as the pipeline owner.
 */
char *
etl_swap_batch(EtlRun *run, bool create)
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
	etl_spi_exec(etl_deparse_swap_batch_create(etl_batch_sql(run), name), NULL,
				 SPI_OK_UTILITY, InvalidSnapshot);
	SetUserIdAndSecContext(userid, sec);
	etl_spi_exec(etl_deparse_swap_batch_shape(etl_batch_sql(run), name), NULL,
				 SPI_OK_UTILITY, InvalidSnapshot);
	if (key_is_unique(run))
		etl_spi_exec(etl_deparse_swap_batch_key(etl_batch_sql(run), name),
					 NULL, SPI_OK_UTILITY, InvalidSnapshot);
	return name;
}
