/*-------------------------------------------------------------------------
 *
 * rowhash.c
 *	  etl_row_hash(VARIADIC "any") RETURNS bytea: the row signature that
 *	  lets a merge skip unchanged rows.
 *
 *	  The signature is SipHash-2-4 with 128-bit output (Aumasson and
 *	  Bernstein, "SipHash: a fast short-input PRF", 2012) under the fixed key
 *	  "etl_row_hash_v1!" (16 ASCII bytes, read as two little-endian 64-bit
 *	  words), over this encoding of the arguments, in order:
 *
 *		NULL	   one byte 0x00
 *		a value    one byte 0x01, the length of the payload as a 4-byte
 *				   big-endian integer, then the payload
 *
 *	  The payload of a value depends on its type (a domain is encoded as
 *	  its base type):
 *	  - pass-by-value types (integers, float4/8, bool, date, time,
 *		timestamp, timestamptz, money, oid, enum ...): the value as a
 *		big-endian integer of the type's length (floats by their IEEE bit
 *		pattern, an enum value by its label's OID);
 *	  - string types (category S: text, varchar, char ...) and bytea: the
 *		bytes as stored (server encoding);
 *	  - numeric: its normalised stored form, a sequence of 16-bit words
 *		(header, then base-10000 digits), each written big-endian; equal
 *		values of equal display scale encode alike;
 *	  - uuid: its 16 bytes;
 *	  - interval, timetz and the geometric types (point, lseg, path, box,
 *		polygon, line, circle): the type's binary send format (the wire
 *		protocol's: big-endian integers and IEEE floats, no setting);
 *	  - arrays, ranges, multiranges and composites whose text output
 *		depends on no setting (their element, bound or field types are none
 *		of those listed as setting-dependent below, recursively): their
 *		text output;
 *	  - other arrays: the number of dimensions (4 bytes), each dimension's
 *		length and lower bound (4 bytes each), then each element in
 *		storage order, encoded as an argument is (0x00, or 0x01, length,
 *		payload);
 *	  - other ranges: a flags byte (0x01 empty, 0x02 lower bound inclusive,
 *		0x04 upper bound inclusive, 0x08 no lower bound, 0x10 no upper
 *		bound), then each finite bound encoded as an argument is;
 *	  - other multiranges: the number of ranges (4 bytes), then each range
 *		encoded as an argument is;
 *	  - other composites: the number of live attributes (4 bytes), then
 *		each attribute encoded as an argument is (dropped ones skipped);
 *	  - every other type: its text output.
 *
 *	  The text output of date, timetz, timestamp, timestamptz and interval
 *	  depends on DateStyle, IntervalStyle and TimeZone, that of
 *	  float4, float8 and the geometric types on extra_float_digits, money's
 *	  on lc_monetary, bytea's on bytea_output and the reg* types' on
 *	  search_path: these are the setting-dependent types, never hashed
 *	  through their text, alone or inside a container.  So the hash does
 *	  not depend on any session setting or on the machine's byte order,
 *	  NULL differs from '' and from no argument, and the order of the
 *	  arguments matters.  It depends on the database encoding (strings are
 *	  hashed as stored).  The output is 16 bytes, out[0..7] and out[8..15]
 *	  the two little-endian result words.  The algorithm and the key are
 *	  part of the on-disk contract (stored _etl_row_hash values): they never
 *	  change within a major version.
 *
 * IDENTIFICATION
 *	  src/base/rowhash.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/multirangetypes.h"
#include "utils/rangetypes.h"
#include "utils/typcache.h"

#include "base/siphash.h"

PG_FUNCTION_INFO_V1(etl_row_hash);

/* how values of one type are encoded */
typedef enum HashStrategy
{
	HASH_BYVAL,		 /* big-endian value of typlen bytes */
	HASH_RAW,		 /* varlena bytes */
	HASH_NUMERIC,	 /* numeric's 16-bit words, big-endian */
	HASH_FIXED,		 /* fixed-length by-reference bytes */
	HASH_SEND,		 /* binary send output */
	HASH_OUTPUT,	 /* text output */
	HASH_ARRAY,		 /* dimensions, then the elements */
	HASH_RANGE,		 /* flags, then the finite bounds */
	HASH_MULTIRANGE, /* count, then the ranges */
	HASH_RECORD,	 /* count, then the live attributes */
	HASH_ANY_RECORD	 /* a record whose row type each value tells */
} HashStrategy;

typedef struct HashType HashType;

struct HashType
{
	Oid type;	  /* as given: a domain stays a domain */
	int32 typmod; /* records: the row type's typmod */
	int16 typlen;
	bool typbyval;
	char typalign;
	HashStrategy strategy;
	FmgrInfo proc;			  /* send or output function */
	HashType *elem;			  /* array element, range subtype, range */
	TypeCacheEntry *typcache; /* ranges, multiranges */
	TupleDesc tupdesc;		  /* records */
	HashType **atts;		  /* records: per attribute, NULL if dropped */
};

typedef struct HashCache
{
	int nargs;
	bool variadic;
	MemoryContext cxt;
	List *types; /* every HashType built, to find by type and typmod */
	StringInfoData buf;
	HashType *args[FLEXIBLE_ARRAY_MEMBER];
} HashCache;

static const unsigned char row_hash_key[16] = "etl_row_hash_v1!";

static HashType *hash_type(HashCache *cache, Oid type, int32 typmod);
static void append_value(StringInfo buf, HashCache *cache, HashType *t,
						 Datum value);

/*
 * setting_dependent_scalar tells whether the text output of a scalar
 * (non-container) base type depends on a session setting.
 */
static bool
setting_dependent_scalar(Oid base)
{
	switch (base)
	{
		case DATEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case FLOAT4OID:
		case FLOAT8OID:
		case CASHOID:
		case BYTEAOID:
		case POINTOID:
		case LSEGOID:
		case PATHOID:
		case BOXOID:
		case POLYGONOID:
		case LINEOID:
		case CIRCLEOID:
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCLASSOID:
		case REGTYPEOID:
		case REGROLEOID:
		case REGNAMESPACEOID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGCOLLATIONOID:
			return true;
		default:
			return false;
	}
}

/*
 * output_is_stable tells whether the text output of a type depends on no
 * session setting: a scalar not listed by setting_dependent_scalar, or an
 * array, range, multirange or composite of such types only.  A record
 * type is judged by its row type (typmod); RECORD itself, whose row type
 * only a value tells, never is.
 */
static bool
output_is_stable(Oid type, int32 typmod)
{
	Oid base = getBaseType(type);
	Oid elem = get_element_type(base);

	check_stack_depth();
	if (OidIsValid(elem))
		return output_is_stable(elem, -1);
	switch (get_typtype(base))
	{
		case TYPTYPE_RANGE:
			return output_is_stable(get_range_subtype(base), -1);
		case TYPTYPE_MULTIRANGE:
			return output_is_stable(
				get_range_subtype(get_multirange_range(base)), -1);
		case TYPTYPE_COMPOSITE:
		case TYPTYPE_PSEUDO:
		{
			TupleDesc desc;
			bool stable = true;

			if (base == RECORDOID && typmod < 0)
				return false;
			if (base != RECORDOID && get_typtype(base) == TYPTYPE_PSEUDO)
				return true;
			desc = lookup_rowtype_tupdesc(base, typmod);
			for (int i = 0; i < desc->natts && stable; i++)
			{
				Form_pg_attribute att = TupleDescAttr(desc, i);

				if (!att->attisdropped &&
					!output_is_stable(att->atttypid, att->atttypmod))
					stable = false;
			}
			ReleaseTupleDesc(desc);
			return stable;
		}
		default:
			return !setting_dependent_scalar(base);
	}
}

/*
 * set_proc looks up the send (or text output) function of a type into t.
 */
static void
set_proc(HashType *t, Oid type, bool send, MemoryContext cxt)
{
	Oid func;
	bool isvarlena;

	if (send)
		getTypeBinaryOutputInfo(type, &func, &isvarlena);
	else
		getTypeOutputInfo(type, &func, &isvarlena);
	fmgr_info_cxt(func, &t->proc, cxt);
}

/*
 * setup_record fills in a composite type's row type and its attributes'
 * encodings.
 */
static void
setup_record(HashCache *cache, HashType *t, Oid base)
{
	TupleDesc desc = lookup_rowtype_tupdesc(base, t->typmod);
	MemoryContext old = MemoryContextSwitchTo(cache->cxt);

	t->tupdesc = CreateTupleDescCopy(desc);
	ReleaseTupleDesc(desc);
	t->atts = palloc0(sizeof(HashType *) * Max(t->tupdesc->natts, 1));
	MemoryContextSwitchTo(old);
	for (int i = 0; i < t->tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(t->tupdesc, i);

		if (!att->attisdropped)
			t->atts[i] = hash_type(cache, att->atttypid, att->atttypmod);
	}
}

/*
 * setup_type chooses how to encode values of a type (see the file header)
 * and prepares what that needs.
 */
static void
setup_type(HashCache *cache, HashType *t)
{
	Oid base = getBaseType(t->type);
	char category;
	bool preferred;
	Oid elem;
	char typtype;

	get_typlenbyvalalign(base, &t->typlen, &t->typbyval, &t->typalign);
	get_type_category_preferred(base, &category, &preferred);
	elem = get_element_type(base);
	typtype = get_typtype(base);

	if (t->typbyval &&
		(t->typlen == 1 || t->typlen == 2 || t->typlen == 4 || t->typlen == 8))
		t->strategy = HASH_BYVAL;
	else if (t->typlen == -1 &&
			 (category == TYPCATEGORY_STRING || base == BYTEAOID))
		t->strategy = HASH_RAW;
	else if (base == NUMERICOID)
		t->strategy = HASH_NUMERIC;
	else if (t->type == UUIDOID)
		t->strategy = HASH_FIXED;
	else if (setting_dependent_scalar(base))
	{
		/* interval, timetz, the geometric types: their wire format */
		t->strategy = HASH_SEND;
		set_proc(t, base, true, cache->cxt);
	}
	else if (base == RECORDOID && t->typmod < 0)
		t->strategy = HASH_ANY_RECORD;
	else if (!OidIsValid(elem) && typtype != TYPTYPE_RANGE &&
			 typtype != TYPTYPE_MULTIRANGE && typtype != TYPTYPE_COMPOSITE &&
			 base != RECORDOID)
	{
		t->strategy = HASH_OUTPUT;
		set_proc(t, t->type, false, cache->cxt);
	}
	else if (output_is_stable(base, t->typmod))
	{
		/* a container of setting-independent types: as it always was */
		t->strategy = HASH_OUTPUT;
		set_proc(t, t->type, false, cache->cxt);
	}
	else if (OidIsValid(elem))
	{
		t->strategy = HASH_ARRAY;
		t->elem = hash_type(cache, elem, -1);
	}
	else if (typtype == TYPTYPE_RANGE)
	{
		t->strategy = HASH_RANGE;
		t->typcache = lookup_type_cache(base, TYPECACHE_RANGE_INFO);
		t->elem = hash_type(cache, t->typcache->rngelemtype->type_id, -1);
	}
	else if (typtype == TYPTYPE_MULTIRANGE)
	{
		t->strategy = HASH_MULTIRANGE;
		t->typcache = lookup_type_cache(base, TYPECACHE_MULTIRANGE_INFO);
		t->elem = hash_type(cache, t->typcache->rngtype->type_id, -1);
	}
	else
	{
		t->strategy = HASH_RECORD;
		setup_record(cache, t, base);
	}
}

/*
 * hash_type returns the encoding of a type (and, for records, typmod),
 * building it the first time.
 */
static HashType *
hash_type(HashCache *cache, Oid type, int32 typmod)
{
	ListCell *lc;
	HashType *t;
	MemoryContext old;

	check_stack_depth();
	if (getBaseType(type) != RECORDOID)
		typmod = -1;
	foreach (lc, cache->types)
	{
		t = lfirst(lc);
		if (t->type == type && t->typmod == typmod)
			return t;
	}
	old = MemoryContextSwitchTo(cache->cxt);
	t = palloc0(sizeof(HashType));
	t->type = type;
	t->typmod = typmod;
	cache->types = lappend(cache->types, t);
	MemoryContextSwitchTo(old);
	setup_type(cache, t);
	return t;
}

/*
 * append_uint32 appends a 4-byte big-endian integer.
 */
static void
append_uint32(StringInfo buf, uint32 v)
{
	unsigned char be[4];

	be[0] = (unsigned char) (v >> 24);
	be[1] = (unsigned char) (v >> 16);
	be[2] = (unsigned char) (v >> 8);
	be[3] = (unsigned char) v;
	appendBinaryStringInfo(buf, (const char *) be, 4);
}

/*
 * append_array_payload appends an array's dimensions and elements.
 */
static void
append_array_payload(StringInfo buf, HashCache *cache, HashType *t,
					 Datum value)
{
	ArrayType *arr = DatumGetArrayTypeP(value);
	int ndim = ARR_NDIM(arr);
	HashType *e = t->elem;
	Datum *elems;
	bool *nulls;
	int n;

	append_uint32(buf, (uint32) ndim);
	for (int i = 0; i < ndim; i++)
	{
		append_uint32(buf, (uint32) ARR_DIMS(arr)[i]);
		append_uint32(buf, (uint32) ARR_LBOUND(arr)[i]);
	}
	deconstruct_array(arr, ARR_ELEMTYPE(arr), e->typlen, e->typbyval,
					  e->typalign, &elems, &nulls, &n);
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			appendStringInfoChar(buf, 0x00);
		else
			append_value(buf, cache, e, elems[i]);
	}
	pfree(elems);
	pfree(nulls);
	if ((Pointer) arr != DatumGetPointer(value))
		pfree(arr);
}

/*
 * append_range_payload appends a range's flags and finite bounds.
 */
static void
append_range_payload(StringInfo buf, HashCache *cache, HashType *t,
					 RangeType *range)
{
	RangeBound lower;
	RangeBound upper;
	bool empty;
	unsigned char flags = 0;

	range_deserialize(t->typcache, range, &lower, &upper, &empty);
	if (empty)
		flags |= 0x01;
	else
	{
		if (lower.inclusive)
			flags |= 0x02;
		if (upper.inclusive)
			flags |= 0x04;
		if (lower.infinite)
			flags |= 0x08;
		if (upper.infinite)
			flags |= 0x10;
	}
	appendStringInfoChar(buf, (char) flags);
	if (empty)
		return;
	if (!lower.infinite)
		append_value(buf, cache, t->elem, lower.val);
	if (!upper.infinite)
		append_value(buf, cache, t->elem, upper.val);
}

/*
 * append_multirange_payload appends a multirange's count and ranges.
 */
static void
append_multirange_payload(StringInfo buf, HashCache *cache, HashType *t,
						  Datum value)
{
	MultirangeType *mr = DatumGetMultirangeTypeP(value);
	RangeType **ranges;
	int32 count;

	multirange_deserialize(t->typcache->rngtype, mr, &count, &ranges);
	append_uint32(buf, (uint32) count);
	for (int32 i = 0; i < count; i++)
		append_value(buf, cache, t->elem, RangeTypePGetDatum(ranges[i]));
	if (count > 0)
		pfree(ranges);
}

/*
 * append_record_payload appends a composite's live attributes.
 */
static void
append_record_payload(StringInfo buf, HashCache *cache, HashType *t,
					  HeapTupleHeader rec)
{
	TupleDesc desc = t->tupdesc;
	HeapTupleData tuple;
	Datum *values = palloc(sizeof(Datum) * Max(desc->natts, 1));
	bool *nulls = palloc(sizeof(bool) * Max(desc->natts, 1));
	uint32 live = 0;

	tuple.t_len = HeapTupleHeaderGetDatumLength(rec);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = rec;
	heap_deform_tuple(&tuple, desc, values, nulls);
	for (int i = 0; i < desc->natts; i++)
		if (t->atts[i] != NULL)
			live++;
	append_uint32(buf, live);
	for (int i = 0; i < desc->natts; i++)
	{
		if (t->atts[i] == NULL)
			continue;
		if (nulls[i])
			appendStringInfoChar(buf, 0x00);
		else
			append_value(buf, cache, t->atts[i], values[i]);
	}
	pfree(values);
	pfree(nulls);
}

/*
 * append_scalar_payload appends the payload of a value of a scalar
 * strategy (every strategy but the containers').
 */
static void
append_scalar_payload(StringInfo buf, HashType *t, Datum value)
{
	switch (t->strategy)
	{
		case HASH_BYVAL:
		{
			uint64 v;
			unsigned char be[8];

			switch (t->typlen)
			{
				case 1:
					v = (uint8) DatumGetChar(value);
					break;
				case 2:
					v = (uint16) DatumGetInt16(value);
					break;
				case 4:
					v = (uint32) DatumGetInt32(value);
					break;
				default:
					v = (uint64) DatumGetInt64(value);
					break;
			}
			for (int i = 0; i < t->typlen; i++)
				be[i] = (unsigned char) (v >> (8 * (t->typlen - 1 - i)));
			appendBinaryStringInfo(buf, (const char *) be, t->typlen);
			break;
		}
		case HASH_RAW:
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

			appendBinaryStringInfo(buf, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
			if ((Pointer) v != DatumGetPointer(value))
				pfree(v);
			break;
		}
		case HASH_NUMERIC:
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
			const char *words = VARDATA_ANY(v);
			uint32 len = VARSIZE_ANY_EXHDR(v);

			enlargeStringInfo(buf, len);
			for (uint32 i = 0; i + 1 < len; i += 2)
			{
				uint16 w;

				memcpy(&w, words + i, sizeof(w));
				buf->data[buf->len++] = (char) (w >> 8);
				buf->data[buf->len++] = (char) w;
			}
			buf->data[buf->len] = '\0';
			if ((Pointer) v != DatumGetPointer(value))
				pfree(v);
			break;
		}
		case HASH_FIXED:
			appendBinaryStringInfo(buf, DatumGetPointer(value), t->typlen);
			break;
		case HASH_SEND:
		{
			bytea *bin = SendFunctionCall(&t->proc, value);

			appendBinaryStringInfo(buf, VARDATA(bin), VARSIZE(bin) - VARHDRSZ);
			pfree(bin);
			break;
		}
		default:
		{
			char *text = OutputFunctionCall(&t->proc, value);

			appendBinaryStringInfo(buf, text, strlen(text));
			pfree(text);
			break;
		}
	}
}

/*
 * append_value appends one non-NULL value: 0x01, the payload's length
 * (4 bytes, big-endian), the payload.
 */
static void
append_value(StringInfo buf, HashCache *cache, HashType *t, Datum value)
{
	int start;

	check_stack_depth();
	if (t->strategy == HASH_ANY_RECORD)
	{
		HeapTupleHeader rec = DatumGetHeapTupleHeader(value);

		t = hash_type(cache, HeapTupleHeaderGetTypeId(rec),
					  HeapTupleHeaderGetTypMod(rec));
		if (t->strategy == HASH_ANY_RECORD)
			elog(ERROR, "record of unknown row type");
		value = PointerGetDatum(rec);
	}

	appendStringInfoChar(buf, 0x01);
	start = buf->len;
	append_uint32(buf, 0); /* the length, set below */

	switch (t->strategy)
	{
		case HASH_ARRAY:
			append_array_payload(buf, cache, t, value);
			break;
		case HASH_RANGE:
		{
			RangeType *range = DatumGetRangeTypeP(value);

			append_range_payload(buf, cache, t, range);
			break;
		}
		case HASH_MULTIRANGE:
			append_multirange_payload(buf, cache, t, value);
			break;
		case HASH_RECORD:
			append_record_payload(buf, cache, t,
								  DatumGetHeapTupleHeader(value));
			break;
		default:
			append_scalar_payload(buf, t, value);
			break;
	}

	{
		uint32 len = (uint32) (buf->len - start - 4);
		unsigned char *p = (unsigned char *) buf->data + start;

		p[0] = (unsigned char) (len >> 24);
		p[1] = (unsigned char) (len >> 16);
		p[2] = (unsigned char) (len >> 8);
		p[3] = (unsigned char) len;
	}
}

/*
 * get_cache returns the per-call-site cache of argument types.
 */
static HashCache *
get_cache(FunctionCallInfo fcinfo)
{
	HashCache *cache = fcinfo->flinfo->fn_extra;
	MemoryContext cxt = fcinfo->flinfo->fn_mcxt;
	bool variadic = get_fn_expr_variadic(fcinfo->flinfo);
	int nargs = variadic ? 1 : PG_NARGS();

	if (cache != NULL && cache->nargs == nargs && cache->variadic == variadic)
		return cache;

	cache = MemoryContextAllocZero(
		cxt, offsetof(HashCache, args) + sizeof(HashType *) * Max(nargs, 1));
	cache->nargs = nargs;
	cache->variadic = variadic;
	cache->cxt = cxt;
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		initStringInfo(&cache->buf);
		MemoryContextSwitchTo(old);
	}

	for (int i = 0; i < nargs; i++)
	{
		Oid type = get_fn_expr_argtype(fcinfo->flinfo, i);

		if (!OidIsValid(type))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("could not determine the data type of "
								   "argument %d of etl_row_hash",
								   i + 1)));
		if (variadic)
		{
			type = get_element_type(type);
			if (!OidIsValid(type))
				ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
								errmsg("VARIADIC argument of etl_row_hash "
									   "must be an array")));
		}
		cache->args[i] = hash_type(cache, type, -1);
	}
	fcinfo->flinfo->fn_extra = cache;
	return cache;
}

/*
 * etl_row_hash(VARIADIC "any") RETURNS bytea
 *
 * The 16-byte signature of its arguments described in the file header.
 * Never NULL.
 */
Datum
etl_row_hash(PG_FUNCTION_ARGS)
{
	HashCache *cache = get_cache(fcinfo);
	StringInfo buf = &cache->buf;
	bytea *result;

	resetStringInfo(buf);
	if (cache->variadic)
	{
		if (!PG_ARGISNULL(0))
		{
			ArrayType *arr = PG_GETARG_ARRAYTYPE_P(0);
			HashType *a = cache->args[0];
			Datum *elems;
			bool *nulls;
			int n;

			deconstruct_array(arr, ARR_ELEMTYPE(arr), a->typlen, a->typbyval,
							  a->typalign, &elems, &nulls, &n);
			for (int i = 0; i < n; i++)
			{
				if (nulls[i])
					appendStringInfoChar(buf, 0x00);
				else
					append_value(buf, cache, a, elems[i]);
			}
		}
	}
	else
	{
		for (int i = 0; i < cache->nargs; i++)
		{
			if (PG_ARGISNULL(i))
				appendStringInfoChar(buf, 0x00);
			else
				append_value(buf, cache, cache->args[i], PG_GETARG_DATUM(i));
		}
	}

	result = palloc(VARHDRSZ + 16);
	SET_VARSIZE(result, VARHDRSZ + 16);
	siphash_2_4_128((const unsigned char *) buf->data, buf->len, row_hash_key,
					(unsigned char *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}
