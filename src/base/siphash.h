/*-------------------------------------------------------------------------
 *
 * siphash.h
 *	  SipHash-2-4 with 128-bit output (Aumasson and Bernstein, 2012), as
 *	  static inline C without PostgreSQL dependencies, so that the unit test
 *	  test/unit/siphash_vectors.c checks it against the reference vectors.
 *
 * IDENTIFICATION
 *	  src/base/siphash.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SIPHASH_H
#define ETL_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

#define SIP_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

#define SIPROUND                                                              \
	do                                                                        \
	{                                                                         \
		v0 += v1;                                                             \
		v1 = SIP_ROTL(v1, 13);                                                \
		v1 ^= v0;                                                             \
		v0 = SIP_ROTL(v0, 32);                                                \
		v2 += v3;                                                             \
		v3 = SIP_ROTL(v3, 16);                                                \
		v3 ^= v2;                                                             \
		v0 += v3;                                                             \
		v3 = SIP_ROTL(v3, 21);                                                \
		v3 ^= v0;                                                             \
		v2 += v1;                                                             \
		v1 = SIP_ROTL(v1, 17);                                                \
		v1 ^= v2;                                                             \
		v2 = SIP_ROTL(v2, 32);                                                \
	} while (0)

/*
 * load_le64 reads 8 bytes as a little-endian word, whatever the machine.
 */
static inline uint64_t
sip_load_le64(const unsigned char *p)
{
	return (uint64_t) p[0] | ((uint64_t) p[1] << 8) | ((uint64_t) p[2] << 16) |
		   ((uint64_t) p[3] << 24) | ((uint64_t) p[4] << 32) |
		   ((uint64_t) p[5] << 40) | ((uint64_t) p[6] << 48) |
		   ((uint64_t) p[7] << 56);
}

static inline void
sip_store_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char) (v >> (8 * i));
}

/*
 * siphash_2_4_128 computes SipHash-2-4 with 128-bit output of data under a
 * 16-byte key into out[16].
 */
static inline void
siphash_2_4_128(const unsigned char *data, size_t len,
				const unsigned char key[16], unsigned char out[16])
{
	uint64_t k0 = sip_load_le64(key);
	uint64_t k1 = sip_load_le64(key + 8);
	uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
	const unsigned char *end = data + (len - (len % 8));
	uint64_t b = ((uint64_t) len) << 56;
	int left = len & 7;

	v1 ^= 0xee;
	for (; data != end; data += 8)
	{
		uint64_t m = sip_load_le64(data);

		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	for (int i = left - 1; i >= 0; i--)
		b |= ((uint64_t) data[i]) << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;

	v2 ^= 0xee;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	sip_store_le64(out, v0 ^ v1 ^ v2 ^ v3);
	v1 ^= 0xdd;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	sip_store_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

#endif /* ETL_SIPHASH_H */
