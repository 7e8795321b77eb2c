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
 *	  The payload of a value is
 *	  - for pass-by-value types (integers, float4/8, bool, date, time,
 *		timestamp, timestamptz, oid ...): the value as a big-endian integer
 *		of the type's length (floats by their IEEE bit pattern);
 *	  - for string types (category S: text, varchar, char, name ...) and
 *		bytea: the bytes as stored (server encoding);
 *	  - for numeric: its normalised stored form, which is a sequence of
 *		16-bit words (header, then base-10000 digits), each written
 *		big-endian; equal values of equal display scale encode alike;
 *	  - for uuid: its 16 bytes;
 *	  - for interval and timetz: the type's binary send format (the wire
 *		protocol's, which depends on no setting and no byte order);
 *	  - for every other type: its text output.
 *
 *	  So the hash does not depend on TimeZone, DateStyle, client_encoding
 *	  or the machine's byte order, NULL differs from '' and from no
 *	  argument, and the order of the arguments matters.  The output is 16
 *	  bytes, out[0..7] and out[8..15] the two little-endian result words.
 *	  The algorithm and the key are part of the on-disk contract (stored
 *	  _etl_row_hash values): they never change within a major version.
 *
 * IDENTIFICATION
 *	  src/rowhash.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "siphash.h"

PG_FUNCTION_INFO_V1(etl_row_hash);

/* how one argument is encoded */
typedef enum HashStrategy
{
	HASH_BYVAL,	  /* big-endian value of typlen bytes */
	HASH_RAW,	  /* varlena bytes */
	HASH_NUMERIC, /* numeric's 16-bit words, big-endian */
	HASH_FIXED,	  /* fixed-length by-reference bytes */
	HASH_SEND,	  /* binary send output */
	HASH_OUTPUT	  /* text output */
} HashStrategy;

typedef struct HashArgInfo
{
	Oid type;
	int16 typlen;
	bool typbyval;
	HashStrategy strategy;
	FmgrInfo proc; /* send or output function */
} HashArgInfo;

typedef struct HashCache
{
	int nargs;
	bool variadic;
	StringInfoData buf;
	HashArgInfo args[FLEXIBLE_ARRAY_MEMBER];
} HashCache;

static const unsigned char row_hash_key[16] = "etl_row_hash_v1!";

/*
 * setup_arg chooses how to encode values of a type.
 */
static void
setup_arg(HashArgInfo *a, Oid type, MemoryContext cxt)
{
	char category;
	bool preferred;
	Oid func;
	bool isvarlena;

	a->type = type;
	get_typlenbyval(type, &a->typlen, &a->typbyval);
	get_type_category_preferred(getBaseType(type), &category, &preferred);

	if (a->typbyval &&
		(a->typlen == 1 || a->typlen == 2 || a->typlen == 4 || a->typlen == 8))
		a->strategy = HASH_BYVAL;
	else if (a->typlen == -1 &&
			 (category == TYPCATEGORY_STRING || getBaseType(type) == BYTEAOID))
		a->strategy = HASH_RAW;
	else if (getBaseType(type) == NUMERICOID)
		a->strategy = HASH_NUMERIC;
	else if (type == UUIDOID)
		a->strategy = HASH_FIXED;
	else if (type == INTERVALOID || type == TIMETZOID)
	{
		a->strategy = HASH_SEND;
		getTypeBinaryOutputInfo(type, &func, &isvarlena);
		fmgr_info_cxt(func, &a->proc, cxt);
	}
	else
	{
		a->strategy = HASH_OUTPUT;
		getTypeOutputInfo(type, &func, &isvarlena);
		fmgr_info_cxt(func, &a->proc, cxt);
	}
}

/*
 * append_payload appends the length-prefixed payload of one value.
 */
static void
append_payload(StringInfo buf, HashArgInfo *a, Datum value)
{
	unsigned char hdr[5];
	const char *data;
	uint32 len;
	unsigned char be[8];
	unsigned char scratch[64];
	unsigned char *big = NULL;
	char *text = NULL;
	bytea *bin = NULL;

	switch (a->strategy)
	{
		case HASH_BYVAL:
		{
			uint64 v;

			switch (a->typlen)
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
			len = a->typlen;
			for (uint32 i = 0; i < len; i++)
				be[i] = (unsigned char) (v >> (8 * (len - 1 - i)));
			data = (const char *) be;
			break;
		}
		case HASH_RAW:
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

			data = VARDATA_ANY(v);
			len = VARSIZE_ANY_EXHDR(v);
			break;
		}
		case HASH_NUMERIC:
		{
			struct varlena *v = PG_DETOAST_DATUM_PACKED(value);
			const char *words = VARDATA_ANY(v);
			unsigned char *out = scratch;

			len = VARSIZE_ANY_EXHDR(v);
			if (len > sizeof(scratch))
				out = big = palloc(len);
			for (uint32 i = 0; i + 1 < len; i += 2)
			{
				uint16 w;

				memcpy(&w, words + i, sizeof(w));
				out[i] = (unsigned char) (w >> 8);
				out[i + 1] = (unsigned char) w;
			}
			data = (const char *) out;
			break;
		}
		case HASH_FIXED:
			data = DatumGetPointer(value);
			len = a->typlen;
			break;
		case HASH_SEND:
			bin = SendFunctionCall(&a->proc, value);
			data = VARDATA(bin);
			len = VARSIZE(bin) - VARHDRSZ;
			break;
		default:
			text = OutputFunctionCall(&a->proc, value);
			data = text;
			len = strlen(text);
			break;
	}

	hdr[0] = 0x01;
	hdr[1] = (unsigned char) (len >> 24);
	hdr[2] = (unsigned char) (len >> 16);
	hdr[3] = (unsigned char) (len >> 8);
	hdr[4] = (unsigned char) len;
	appendBinaryStringInfo(buf, (const char *) hdr, 5);
	appendBinaryStringInfo(buf, data, len);
	if (big)
		pfree(big);
	if (text)
		pfree(text);
	if (bin)
		pfree(bin);
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
		cxt, offsetof(HashCache, args) + sizeof(HashArgInfo) * Max(nargs, 1));
	cache->nargs = nargs;
	cache->variadic = variadic;
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
		setup_arg(&cache->args[i], type, cxt);
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
			HashArgInfo *a = &cache->args[0];
			Datum *elems;
			bool *nulls;
			int n;
			int16 typlen;
			bool typbyval;
			char typalign;

			get_typlenbyvalalign(a->type, &typlen, &typbyval, &typalign);
			deconstruct_array(arr, a->type, typlen, typbyval, typalign, &elems,
							  &nulls, &n);
			for (int i = 0; i < n; i++)
			{
				if (nulls[i])
					appendStringInfoChar(buf, 0x00);
				else
					append_payload(buf, a, elems[i]);
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
				append_payload(buf, &cache->args[i], PG_GETARG_DATUM(i));
		}
	}

	result = palloc(VARHDRSZ + 16);
	SET_VARSIZE(result, VARHDRSZ + 16);
	siphash_2_4_128((const unsigned char *) buf->data, buf->len, row_hash_key,
					(unsigned char *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}
