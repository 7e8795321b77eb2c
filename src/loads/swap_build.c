/*-------------------------------------------------------------------------
 *
 * swap_build.c
 *	  Load partition_swap, phase B (described in swap.c): the staging
 *	  tables of the partitions a batch touches, built and swapped in.
 *
 * IDENTIFICATION
 *	  src/loads/swap_build.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "commands/comment.h"
#include "commands/defrem.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/typcache.h"

#include "base/settings.h"
#include "base/spi_util.h"
#include "loads/swap_build.h"
#include "loads/swap_guard.h"
#include "loads/swap_key.h"
#include "sql/deparse_swap.h"
#include "sql/names.h"
#include "sql/run_state.h"

/*
 * partitions rebuilt beyond which the batch table is indexed rather than
 * scanned once per partition
 */
#define ETL_SWAP_SCANS 4

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
new_part(EtlRun *run, Relation rel, EtlSwapKey *k, EtlSwapRoute *r, int32 gap,
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
existing_part(EtlRun *run, Relation rel, EtlSwapRoute *r, List **parts,
			  Oid oid)
{
	SwapPart *part;
	HeapTuple tup;
	Datum bound;
	bool isnull;
	ListCell *lc;

	foreach (lc, *parts)
		if (((SwapPart *) lfirst(lc))->old == oid)
			return lfirst(lc);
	etl_swap_check_partition(run->p, oid, true);
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
		   EtlSwapRoute *r)
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
		etl_spi_exec(etl_deparse_swap_keep(etl_batch_sql(run),
										   part->staging_sql,
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
	changed = etl_deparse_swap_add(etl_batch_sql(run), part->staging_sql,
								   batch, filter, 2);
	if (changed == NULL)
		etl_spi_exec(etl_deparse_swap_add(etl_batch_sql(run),
										  part->staging_sql, batch, filter, 0),
					 &args, SPI_OK_INSERT, snapshot);
	else
	{
		etl_spi_exec(etl_deparse_swap_add(etl_batch_sql(run),
										  part->staging_sql, batch, filter, 1),
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
	EtlSwapRoute r;
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
	etl_swap_key(run->p, rel, &k);
	etl_swap_route(rel, &k, &r);
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
 * dropped (swap_rebuild()).  Nothing to do otherwise (a batch without new
 * or changed rows, the whole batch already swapped by etl_swap_load()).
 * The finish of load partition_swap (load_partition_swap.c).  Runs as the pipeline owner inside the attempt's
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

	if ((batch = etl_swap_batch(run, false)) == NULL)
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
