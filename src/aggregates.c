/*-------------------------------------------------------------------------
 *
 * aggregates.c
 *	  etl_dup_count(anyelement): a parallel-safe aggregate that counts the
 *	  rows whose value an earlier row already had, so that a unique check
 *	  does not force the one aggregate pass of the quality checks (which
 *	  would need count(DISTINCT), an aggregate that cannot run in parallel)
 *	  onto a single core.
 *
 *	  The state is a hash set of 64-bit hashes of the values (the type's
 *	  extended hash function; for types without one, of the text output).
 *	  Two different values may share a hash, so the count may exceed the
 *	  truth (with about n^2 / 2^65 probability), never fall short: quality.c
 *	  recounts exactly, with count(DISTINCT), only when it is not zero.
 *	  States combine by merging sets and serialize as their hash lists.
 *
 *	  Memory: the set holds 16 bytes per distinct value and never grows
 *	  beyond work_mem (as a hash aggregate would not, without spilling).
 *	  When the next growth would pass it, the set is dropped and the count
 *	  becomes unknown: the result is NULL and quality.c counts exactly.  A
 *	  state that is unknown stays so when combined with another.
 *
 * IDENTIFICATION
 *	  src/aggregates.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

typedef struct DupEntry
{
	uint64 key;
	char status;
} DupEntry;

#define SH_PREFIX dupset
#define SH_ELEMENT_TYPE DupEntry
#define SH_KEY_TYPE uint64
#define SH_KEY key
/* keys are hashes already: fold them to 32 bits */
#define SH_HASH_KEY(tb, k) ((uint32) ((k) ^ ((k) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct DupState
{
	dupset_hash *set; /* NULL: the count is unknown (beyond work_mem) */
	int64 dups;		  /* rows whose hash was already in the set */
	Oid type;		  /* 0 in a deserialized state */
	bool use_text;	  /* no extended hash function: hash the text */
	FmgrInfo proc;	  /* extended hash, or output function */
} DupState;

PG_FUNCTION_INFO_V1(etl_dup_trans);
PG_FUNCTION_INFO_V1(etl_dup_final);
PG_FUNCTION_INFO_V1(etl_dup_combine);
PG_FUNCTION_INFO_V1(etl_dup_serial);
PG_FUNCTION_INFO_V1(etl_dup_deserial);

#define DUP_SEED INT64CONST(0x65746c5f64757073) /* "etl_dups" */

/*
 * aggcontext returns the aggregate's memory context (errors outside one).
 */
static MemoryContext
aggcontext(FunctionCallInfo fcinfo)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR,
			 "etl_dup_count support function called outside an aggregate");
	return cxt;
}

/*
 * new_state allocates an empty state in cxt.
 */
static DupState *
new_state(MemoryContext cxt)
{
	DupState *st = MemoryContextAllocZero(cxt, sizeof(DupState));

	st->set = dupset_create(cxt, 1024, NULL);
	return st;
}

/*
 * set_bytes returns the memory a set of the given number of buckets takes.
 */
static inline Size
set_bytes(uint64 buckets)
{
	return (Size) buckets * sizeof(DupEntry);
}

/*
 * give_up drops a state's set: its count is unknown from now on.
 */
static void
give_up(DupState *st)
{
	if (st->set != NULL)
		dupset_destroy(st->set);
	st->set = NULL;
}

/*
 * add_hash adds one hash to a state, counting it when already present.  A
 * new value that would make the set grow beyond work_mem makes the count
 * unknown instead.
 */
static inline void
add_hash(DupState *st, uint64 h)
{
	Size limit = (Size) work_mem * 1024;
	bool found;

	if (st->set == NULL)
		return;
	if (st->set->members >= st->set->grow_threshold &&
		set_bytes(st->set->size * 2) > limit)
	{
		/* the insert would double the set: only a known value may pass */
		if (dupset_lookup(st->set, h) != NULL)
			st->dups++;
		else
			give_up(st);
		return;
	}
	(void) dupset_insert(st->set, h, &found);
	if (found)
		st->dups++;
	if (set_bytes(st->set->size) > limit)
		give_up(st); /* it grew for another reason (long probes) */
}

/*
 * etl_dup_trans(state internal, value anyelement) RETURNS internal
 */
Datum
etl_dup_trans(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = aggcontext(fcinfo);
	DupState *st = PG_ARGISNULL(0) ? NULL : (DupState *) PG_GETARG_POINTER(0);
	uint64 h;

	if (st == NULL)
	{
		TypeCacheEntry *tc;

		st = new_state(cxt);
		st->type = get_fn_expr_argtype(fcinfo->flinfo, 1);
		tc = lookup_type_cache(st->type, TYPECACHE_HASH_EXTENDED_PROC);
		if (OidIsValid(tc->hash_extended_proc))
			fmgr_info_cxt(tc->hash_extended_proc, &st->proc, cxt);
		else
		{
			Oid out;
			bool varlena;

			getTypeOutputInfo(st->type, &out, &varlena);
			fmgr_info_cxt(out, &st->proc, cxt);
			st->use_text = true;
		}
	}
	if (PG_ARGISNULL(1) || st->set == NULL)
		PG_RETURN_POINTER(st); /* NULL, or the count is unknown already */

	if (st->use_text)
	{
		char *s = OutputFunctionCall(&st->proc, PG_GETARG_DATUM(1));

		h = DatumGetUInt64(
			hash_any_extended((unsigned char *) s, strlen(s), DUP_SEED));
		pfree(s);
	}
	else
		h = DatumGetUInt64(FunctionCall2Coll(&st->proc, PG_GET_COLLATION(),
											 PG_GETARG_DATUM(1),
											 Int64GetDatum(DUP_SEED)));
	add_hash(st, h);
	PG_RETURN_POINTER(st);
}

/*
 * etl_dup_final(state internal) RETURNS bigint: NULL when the count is
 * unknown (more distinct values than work_mem holds).
 */
Datum
etl_dup_final(PG_FUNCTION_ARGS)
{
	DupState *st = PG_ARGISNULL(0) ? NULL : (DupState *) PG_GETARG_POINTER(0);

	if (st != NULL && st->set == NULL)
		PG_RETURN_NULL();
	PG_RETURN_INT64(st ? st->dups : 0);
}

/*
 * etl_dup_combine(a internal, b internal) RETURNS internal: a with b merged
 * in (a value in both halves is a duplicate).
 */
Datum
etl_dup_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = aggcontext(fcinfo);
	DupState *a = PG_ARGISNULL(0) ? NULL : (DupState *) PG_GETARG_POINTER(0);
	DupState *b = PG_ARGISNULL(1) ? NULL : (DupState *) PG_GETARG_POINTER(1);
	dupset_iterator it;
	DupEntry *e;

	if (b == NULL)
		PG_RETURN_POINTER(a);
	if (a == NULL)
		a = new_state(cxt);
	a->dups += b->dups;
	if (b->set == NULL)
	{
		give_up(a); /* unknown on one side: unknown */
		PG_RETURN_POINTER(a);
	}
	dupset_start_iterate(b->set, &it);
	while (a->set != NULL && (e = dupset_iterate(b->set, &it)) != NULL)
		add_hash(a, e->key);
	PG_RETURN_POINTER(a);
}

/*
 * etl_dup_serial(state internal) RETURNS bytea: dups, count, hashes; a
 * count of -1 for an unknown state.
 */
Datum
etl_dup_serial(PG_FUNCTION_ARGS)
{
	DupState *st = (DupState *) PG_GETARG_POINTER(0);
	StringInfoData buf;
	dupset_iterator it;
	DupEntry *e;

	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->dups);
	if (st->set == NULL)
	{
		pq_sendint64(&buf, -1);
		PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
	}
	pq_sendint64(&buf, st->set->members);
	dupset_start_iterate(st->set, &it);
	while ((e = dupset_iterate(st->set, &it)) != NULL)
		pq_sendint64(&buf, (int64) e->key);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * etl_dup_deserial(bytes bytea, internal) RETURNS internal
 */
Datum
etl_dup_deserial(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = aggcontext(fcinfo);
	bytea *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	DupState *st = new_state(cxt);
	int64 n;

	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = 0;
	buf.cursor = 0;
	st->dups = pq_getmsgint64(&buf);
	n = pq_getmsgint64(&buf);
	if (n < 0)
		give_up(st);
	for (int64 i = 0; i < n; i++)
	{
		bool found;

		(void) dupset_insert(st->set, (uint64) pq_getmsgint64(&buf), &found);
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}
