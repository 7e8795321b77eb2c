/*-------------------------------------------------------------------------
 *
 * aggregates.c
 *	  etl_dup_count(anyelement): a parallel-safe aggregate that counts the
 *	  rows whose value an earlier row already had, so that a unique check
 *	  does not force the one aggregate pass of the quality checks (which
 *	  would need count(DISTINCT), an aggregate that cannot run in parallel)
 *	  onto a single core; the load's classification counts keys seen twice
 *	  with it too.  etl_zstats(float8): the statistics of a z-score check in
 *	  one aggregate.
 *
 *	  etl_dup_count's state is an array of 64-bit hashes of the values (the
 *	  type's extended hash function; for types without one, of the text
 *	  output).  A row appends its hash; when the array is full it is sorted
 *	  (radix sort) and its repeats counted and dropped, and it grows only
 *	  when most of it is distinct.  This streams through memory where a hash
 *	  set would miss the cache on every row, and states combine by merging
 *	  their sorted arrays -- linear, so the leader of a parallel aggregate
 *	  does little serial work -- and serialize as those arrays.
 *
 *	  Two different values may share a hash, so the count may exceed the
 *	  truth (with about n^2 / 2^65 probability), never fall short: the
 *	  checks (checks/check_eval.c) recount exactly, with count(DISTINCT),
 *	  only when it is not zero.
 *
 *	  Memory: 8 bytes per distinct value, and as much again while sorting;
 *	  the two together never pass work_mem (as a hash aggregate would not,
 *	  without spilling).  When the distinct values would need more, the
 *	  array is dropped and the count becomes unknown: the result is NULL and
 *	  the callers count exactly.  A state that is unknown stays so when
 *	  combined with another.
 *
 * IDENTIFICATION
 *	  src/base/aggregates.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

#include "base/entry.h"

typedef struct DupState
{
	uint64 *keys;  /* NULL: the count is unknown (beyond work_mem) */
	int64 n;	   /* hashes in keys */
	int64 sorted;  /* keys[0 .. sorted) are sorted and distinct */
	int64 cap;	   /* room in keys */
	int64 dups;	   /* rows whose hash an earlier row had */
	Oid type;	   /* 0 in a deserialized state */
	bool use_text; /* no extended hash function: hash the text */
	FmgrInfo proc; /* extended hash, or output function */
} DupState;

PG_FUNCTION_INFO_V1(etl_dup_trans);
PG_FUNCTION_INFO_V1(etl_dup_final);
PG_FUNCTION_INFO_V1(etl_dup_combine);
PG_FUNCTION_INFO_V1(etl_dup_serial);
PG_FUNCTION_INFO_V1(etl_dup_deserial);

#define DUP_SEED INT64CONST(0x65746c5f64757073) /* "etl_dups" */
#define DUP_MIN_CAP 1024

/*
 * aggcontext returns the aggregate's memory context (errors outside one).
 */
static MemoryContext
aggcontext(FunctionCallInfo fcinfo)
{
	MemoryContext cxt;

	if (!AggCheckCallContext(fcinfo, &cxt))
		elog(ERROR, "etl_ext aggregate support function called outside an "
					"aggregate");
	return cxt;
}

/*
 * read_bytea makes buf read a serialized state (pq_getmsg*), in place.
 */
static void
read_bytea(StringInfo buf, bytea *b)
{
	buf->data = VARDATA_ANY(b);
	buf->len = VARSIZE_ANY_EXHDR(b);
	buf->maxlen = 0;
	buf->cursor = 0;
}

/*
 * dup_limit returns the most hashes a state may hold: with the buffer of
 * a sort, within work_mem.
 */
static inline int64
dup_limit(void)
{
	int64 limit = (int64) work_mem * 1024 / (2 * sizeof(uint64));

	/* a serialized state (8 bytes a hash) must stay under 1 GB */
	limit = Min(limit, (int64) (MaxAllocSize / sizeof(uint64)) - 64);
	return Max(limit, DUP_MIN_CAP);
}

/*
 * new_state allocates an empty state with room for cap hashes in cxt.
 */
static DupState *
new_state(MemoryContext cxt, int64 cap)
{
	DupState *st = MemoryContextAllocZero(cxt, sizeof(DupState));

	st->cap = Max(cap, DUP_MIN_CAP);
	st->keys = MemoryContextAllocHuge(cxt, st->cap * sizeof(uint64));
	return st;
}

/*
 * give_up drops a state's hashes: its count is unknown from now on.
 */
static void
give_up(DupState *st)
{
	if (st->keys != NULL)
		pfree(st->keys);
	st->keys = NULL;
	st->n = st->sorted = 0;
}

/*
 * radix_sort sorts n hashes (least significant byte first, eight passes;
 * a pass whose byte is the same in every hash is skipped).
 */
static void
radix_sort(uint64 *keys, int64 n)
{
	uint64 *buf;
	uint64 *from = keys;
	uint64 *to;

	if (n < 2)
		return;
	buf = MemoryContextAllocHuge(CurrentMemoryContext, n * sizeof(uint64));
	to = buf;
	for (int shift = 0; shift < 64; shift += 8)
	{
		int64 count[256] = { 0 };
		int64 pos = 0;
		uint64 *tmp;

		for (int64 i = 0; i < n; i++)
			count[(from[i] >> shift) & 0xff]++;
		if (count[(from[0] >> shift) & 0xff] == n)
			continue; /* one byte value: already in order */
		for (int b = 0; b < 256; b++)
		{
			int64 c = count[b];

			count[b] = pos;
			pos += c;
		}
		for (int64 i = 0; i < n; i++)
			to[count[(from[i] >> shift) & 0xff]++] = from[i];
		tmp = from;
		from = to;
		to = tmp;
	}
	if (from != keys)
		memcpy(keys, from, n * sizeof(uint64));
	pfree(buf);
}

/*
 * compact sorts a state's hashes and drops (and counts) repeats.
 */
static void
compact(DupState *st)
{
	int64 out = 0;

	if (st->keys == NULL || st->sorted == st->n)
		return;
	radix_sort(st->keys, st->n);
	for (int64 i = 0; i < st->n; i++)
	{
		if (out > 0 && st->keys[out - 1] == st->keys[i])
			st->dups++;
		else
			st->keys[out++] = st->keys[i];
	}
	st->n = st->sorted = out;
}

/*
 * make_room compacts a full state, and grows it when most of it is
 * distinct: twice the room, or the count becomes unknown beyond work_mem
 * (also at the limit when a sort frees less than a quarter of the room).
 */
static void
make_room(DupState *st)
{
	int64 cap;

	compact(st);
	if (st->n <= st->cap / 2)
		return;
	cap = Min(st->cap * 2, dup_limit());
	if (cap > st->cap)
	{
		st->keys = repalloc_huge(st->keys, cap * sizeof(uint64));
		st->cap = cap;
		return;
	}

	/*
	 * At the limit, go on only while a sort frees a quarter of the room:
	 * with fewer repeats each row would pay for a sort of the whole array.
	 */
	if (st->n > st->cap - st->cap / 4)
		give_up(st);
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

		st = new_state(cxt, DUP_MIN_CAP);
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
	if (PG_ARGISNULL(1) || st->keys == NULL)
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
	if (st->n == st->cap)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		make_room(st);
		MemoryContextSwitchTo(old);
		if (st->keys == NULL)
			PG_RETURN_POINTER(st);
	}
	st->keys[st->n++] = h;
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

	if (st == NULL)
		PG_RETURN_INT64(0);
	if (st->keys == NULL)
		PG_RETURN_NULL();
	compact(st);
	PG_RETURN_INT64(st->dups);
}

/*
 * etl_dup_combine(a internal, b internal) RETURNS internal: a with b merged
 * in (a value in both halves is a duplicate); the sorted arrays are merged.
 */
Datum
etl_dup_combine(PG_FUNCTION_ARGS)
{
	MemoryContext cxt = aggcontext(fcinfo);
	DupState *a = PG_ARGISNULL(0) ? NULL : (DupState *) PG_GETARG_POINTER(0);
	DupState *b = PG_ARGISNULL(1) ? NULL : (DupState *) PG_GETARG_POINTER(1);
	MemoryContext old;
	uint64 *merged;
	int64 alloc;
	int64 i = 0;
	int64 j = 0;
	int64 out = 0;

	if (b == NULL)
		PG_RETURN_POINTER(a);
	old = MemoryContextSwitchTo(cxt);
	if (a == NULL)
		a = new_state(cxt, DUP_MIN_CAP);
	if (a->keys == NULL || b->keys == NULL)
	{
		a->dups += b->dups;
		give_up(a); /* unknown on one side: unknown */
		MemoryContextSwitchTo(old);
		PG_RETURN_POINTER(a);
	}
	compact(a);
	compact(b);
	a->dups += b->dups;
	if (a->n + b->n > dup_limit())
	{
		give_up(a);
		MemoryContextSwitchTo(old);
		PG_RETURN_POINTER(a);
	}
	alloc = Max(a->n + b->n, DUP_MIN_CAP);
	merged = MemoryContextAllocHuge(cxt, alloc * sizeof(uint64));
	while (i < a->n || j < b->n)
	{
		if (j == b->n || (i < a->n && a->keys[i] < b->keys[j]))
			merged[out++] = a->keys[i++];
		else if (i == a->n || b->keys[j] < a->keys[i])
			merged[out++] = b->keys[j++];
		else
		{
			merged[out++] = a->keys[i++];
			j++;
			a->dups++;
		}
	}
	pfree(a->keys);
	a->keys = merged;
	a->n = a->sorted = out;
	a->cap = alloc;
	MemoryContextSwitchTo(old);
	PG_RETURN_POINTER(a);
}

/*
 * etl_dup_serial(state internal) RETURNS bytea: dups, count, the sorted
 * hashes; a count of -1 for an unknown state.
 */
Datum
etl_dup_serial(PG_FUNCTION_ARGS)
{
	DupState *st = (DupState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	compact(st);
	pq_begintypsend(&buf);
	pq_sendint64(&buf, st->dups);
	if (st->keys == NULL)
	{
		pq_sendint64(&buf, -1);
		PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
	}
	pq_sendint64(&buf, st->n);
	for (int64 i = 0; i < st->n; i++)
		pq_sendint64(&buf, (int64) st->keys[i]);
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
	DupState *st;
	int64 dups;
	int64 n;

	read_bytea(&buf, b);
	dups = pq_getmsgint64(&buf);
	n = pq_getmsgint64(&buf);
	st = new_state(cxt, Max(n, 0));
	st->dups = dups;
	if (n < 0)
		give_up(st);
	for (int64 i = 0; i < n; i++)
		st->keys[i] = (uint64) pq_getmsgint64(&buf);
	st->n = st->sorted = Max(n, 0);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/*
 * etl_zstats(value float8): the statistics of the z-score check in one
 * aggregate, so that the value is converted to float8 once per row (a
 * numeric's conversion goes through its text): {n, mean, stddev_samp, min,
 * max} over the finite values (NaN and +-Infinity left out).  mean, min and
 * max are NULL without values, stddev_samp with fewer than two; sums that
 * overflow give NaN instead of an error (the check then notes that the
 * values are too large).  The sums are float8_accum's (Youngs-Cramer), so
 * that mean and stddev_samp equal avg() and stddev_samp() over the same
 * rows.  Parallel-safe: states combine as float8_combine does.
 */
typedef struct ZState
{
	double n;
	double sx;
	double sxx;
	double min;
	double max;
} ZState;

PG_FUNCTION_INFO_V1(etl_zstats_trans);
PG_FUNCTION_INFO_V1(etl_zstats_final);
PG_FUNCTION_INFO_V1(etl_zstats_combine);
PG_FUNCTION_INFO_V1(etl_zstats_serial);
PG_FUNCTION_INFO_V1(etl_zstats_deserial);

static ZState *
zstate(FunctionCallInfo fcinfo, int argno)
{
	ZState *st;

	if (!PG_ARGISNULL(argno))
		return (ZState *) PG_GETARG_POINTER(argno);
	st = MemoryContextAllocZero(aggcontext(fcinfo), sizeof(ZState));
	return st;
}

/*
 * etl_zstats_trans(state internal, value float8) RETURNS internal
 */
Datum
etl_zstats_trans(PG_FUNCTION_ARGS)
{
	ZState *st = zstate(fcinfo, 0);
	double x;
	double tmp;

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);
	x = PG_GETARG_FLOAT8(1);
	if (!isfinite(x))
		PG_RETURN_POINTER(st);
	if (st->n == 0 || x < st->min)
		st->min = x;
	if (st->n == 0 || x > st->max)
		st->max = x;
	st->n += 1.0;
	st->sx += x;
	if (st->n > 1.0)
	{
		tmp = x * st->n - st->sx;
		st->sxx += tmp * tmp / (st->n * (st->n - 1.0));
	}
	PG_RETURN_POINTER(st);
}

/*
 * etl_zstats_combine(a internal, b internal) RETURNS internal
 */
Datum
etl_zstats_combine(PG_FUNCTION_ARGS)
{
	ZState *a = zstate(fcinfo, 0);
	ZState *b;
	double n;
	double tmp;

	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(a);
	b = (ZState *) PG_GETARG_POINTER(1);
	if (b->n == 0)
		PG_RETURN_POINTER(a);
	if (a->n == 0)
	{
		*a = *b;
		PG_RETURN_POINTER(a);
	}
	n = a->n + b->n;
	tmp = a->sx / a->n - b->sx / b->n;
	a->sxx += b->sxx + a->n * b->n * tmp * tmp / n;
	a->sx += b->sx;
	a->n = n;
	a->min = Min(a->min, b->min);
	a->max = Max(a->max, b->max);
	PG_RETURN_POINTER(a);
}

/*
 * etl_zstats_final(state internal) RETURNS float8[]
 */
Datum
etl_zstats_final(PG_FUNCTION_ARGS)
{
	ZState *st = PG_ARGISNULL(0) ? NULL : (ZState *) PG_GETARG_POINTER(0);
	Datum values[5];
	bool nulls[5] = { false, false, false, false, false };
	int dims[1] = { 5 };
	int lbs[1] = { 1 };
	double n = st ? st->n : 0;

	values[0] = Float8GetDatum(n);
	values[1] = Float8GetDatum(n > 0 ? st->sx / n : 0);
	/* as stddev_samp: roundoff may leave the sum of squares negative */
	values[2] =
		Float8GetDatum(n > 1 && st->sxx > 0 ? sqrt(st->sxx / (n - 1.0)) : 0);
	values[3] = Float8GetDatum(n > 0 ? st->min : 0);
	values[4] = Float8GetDatum(n > 0 ? st->max : 0);
	nulls[1] = nulls[3] = nulls[4] = n == 0;
	nulls[2] = n < 2;
	if (n > 0 && (!isfinite(st->sx) || !isfinite(st->sxx)))
	{
		values[1] = Float8GetDatum(get_float8_nan());
		values[2] = Float8GetDatum(get_float8_nan());
	}
	PG_RETURN_ARRAYTYPE_P(
		construct_md_array(values, nulls, 1, dims, lbs, FLOAT8OID,
						   sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * etl_zstats_serial(state internal) RETURNS bytea
 */
Datum
etl_zstats_serial(PG_FUNCTION_ARGS)
{
	ZState *st = (ZState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendfloat8(&buf, st->n);
	pq_sendfloat8(&buf, st->sx);
	pq_sendfloat8(&buf, st->sxx);
	pq_sendfloat8(&buf, st->min);
	pq_sendfloat8(&buf, st->max);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/*
 * etl_zstats_deserial(bytes bytea, internal) RETURNS internal
 */
Datum
etl_zstats_deserial(PG_FUNCTION_ARGS)
{
	bytea *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	ZState *st = MemoryContextAllocZero(aggcontext(fcinfo), sizeof(ZState));

	read_bytea(&buf, b);
	st->n = pq_getmsgfloat8(&buf);
	st->sx = pq_getmsgfloat8(&buf);
	st->sxx = pq_getmsgfloat8(&buf);
	st->min = pq_getmsgfloat8(&buf);
	st->max = pq_getmsgfloat8(&buf);
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}

/*
 * etl_not_in(value int8, ref regclass, ref_column text) RETURNS boolean:
 * whether value is not among the values of ref's column (never NULL: a
 * NULL value or reference matches nothing).  The foreign key check of an
 * integer column over a small referenced table calls it once per batch
 * row: the first call of each process reads the column, under the query's
 * snapshot and as the current user (SPI), into a set of int8 kept with the
 * call site, so that each row costs one probe of an open-addressing table
 * -- no function call to hash or compare.  Each parallel worker reads the
 * table itself: cheaper than shipping the values in the plan, whose
 * constants travel to every worker as text.
 */
typedef struct RefEntry
{
	int64 key;
	char status;
} RefEntry;

static inline uint32
hash_int64(int64 k)
{
	uint64 h = (uint64) k;

	/* the finalizer of MurmurHash3's 64-bit hash */
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

#define SH_PREFIX refset
#define SH_ELEMENT_TYPE RefEntry
#define SH_KEY_TYPE int64
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_int64(k)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * The references of one call site: a bitmap over [min, max] when the values
 * are dense enough that it takes no more words than there are values (the
 * surrogate keys of a dimension: a bit each, in cache), else a set.
 */
typedef struct RefCache
{
	Oid relid; /* what was read: to tell when the arguments change */
	char *column;
	bool stable; /* both are constants of the query */
	int64 min;
	int64 max;
	uint64 *bits; /* NULL: use set */
	refset_hash *set;
} RefCache;

/*
 * read_refs reads the non-NULL values of ref's column (as int8) into a new
 * RefCache in cxt.
 */
static RefCache *
read_refs(Oid relid, const char *column, MemoryContext cxt)
{
	RefCache *cache = MemoryContextAllocZero(cxt, sizeof(RefCache));
	const char *col = quote_identifier(column);
	char *rel = get_rel_name(relid);
	int64 *vals;
	uint64 n;
	int rc;
	EtlEntry e;

	cache->relid = relid;
	cache->column = MemoryContextStrdup(cxt, column);

	if (rel == NULL)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("relation with OID %u does not exist", relid)));
	rel = quote_qualified_identifier(
		get_namespace_name(get_rel_namespace(relid)), rel);
	etl_entry_begin(&e, ETL_ENTRY_NESTED);
	rc = SPI_execute(psprintf("SELECT %s::pg_catalog.int8 FROM %s WHERE %s "
							  "IS NOT NULL",
							  col, rel, col),
					 true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "etl_not_in: reading %s failed: %s", rel,
			 SPI_result_code_string(rc));

	/* the values once, and their span */
	n = SPI_processed;
	vals = palloc(Max(n, 1) * sizeof(int64));
	for (uint64 i = 0; i < n; i++)
	{
		bool isnull;

		vals[i] = DatumGetInt64(SPI_getbinval(
			SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		if (i == 0 || vals[i] < cache->min)
			cache->min = vals[i];
		if (i == 0 || vals[i] > cache->max)
			cache->max = vals[i];
	}

	/* (unsigned: the span of two int64 may not fit in one) */
	if (n > 0 && ((uint64) cache->max - (uint64) cache->min) / 64 < n)
	{
		cache->bits = MemoryContextAllocZero(
			cxt, (((uint64) cache->max - (uint64) cache->min) / 64 + 1) * 8);
		for (uint64 i = 0; i < n; i++)
		{
			uint64 off = (uint64) vals[i] - (uint64) cache->min;

			cache->bits[off / 64] |= UINT64CONST(1) << (off % 64);
		}
	}
	else
	{
		cache->set = refset_create(cxt, Max(n, 16), NULL);
		for (uint64 i = 0; i < n; i++)
		{
			bool found;

			(void) refset_insert(cache->set, vals[i], &found);
		}
	}
	etl_entry_end(&e); /* frees vals with the SPI memory */
	return cache;
}

PG_FUNCTION_INFO_V1(etl_not_in);

Datum
etl_not_in(PG_FUNCTION_ARGS)
{
	RefCache *cache = (RefCache *) fcinfo->flinfo->fn_extra;
	int64 v;

	if (PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_BOOL(true);
	/* arguments that are not constants may name another table any row */
	if (cache != NULL && !cache->stable &&
		(cache->relid != PG_GETARG_OID(1) ||
		 strcmp(cache->column, text_to_cstring(PG_GETARG_TEXT_PP(2))) != 0))
	{
		if (cache->bits != NULL)
			pfree(cache->bits);
		if (cache->set != NULL)
			refset_destroy(cache->set);
		pfree(cache->column);
		pfree(cache);
		cache = NULL;
	}
	if (cache == NULL)
	{
		cache =
			read_refs(PG_GETARG_OID(1), text_to_cstring(PG_GETARG_TEXT_PP(2)),
					  fcinfo->flinfo->fn_mcxt);
		cache->stable = get_fn_expr_arg_stable(fcinfo->flinfo, 1) &&
						get_fn_expr_arg_stable(fcinfo->flinfo, 2);
		fcinfo->flinfo->fn_extra = cache;
	}
	v = PG_GETARG_INT64(0);
	if (cache->bits != NULL)
	{
		uint64 off;

		if (v < cache->min || v > cache->max)
			PG_RETURN_BOOL(true);
		off = (uint64) v - (uint64) cache->min;
		PG_RETURN_BOOL(
			(cache->bits[off / 64] & (UINT64CONST(1) << (off % 64))) == 0);
	}
	if (cache->set == NULL)
		PG_RETURN_BOOL(true); /* no references */
	PG_RETURN_BOOL(refset_lookup(cache->set, v) == NULL);
}
