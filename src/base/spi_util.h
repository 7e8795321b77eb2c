/*-------------------------------------------------------------------------
 *
 * spi_util.h
 *	  The only SPI wrapper of etl_ext.
 *
 * IDENTIFICATION
 *	  src/base/spi_util.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SPI_UTIL_H
#define ETL_SPI_UTIL_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/snapshot.h"

#define ETL_MAX_ARGS 32

/* positional arguments of one statement: $1 .. $n */
typedef struct EtlArgs
{
	int n;
	Oid types[ETL_MAX_ARGS];
	Datum values[ETL_MAX_ARGS];
	char nulls[ETL_MAX_ARGS];
} EtlArgs;

extern void etl_args_init(EtlArgs *args);
extern int etl_args_add(EtlArgs *args, Oid type, Datum value, bool isnull);
extern int etl_args_add_text(EtlArgs *args, const char *value);
extern int etl_args_add_int8(EtlArgs *args, int64 value);

extern uint64 etl_spi_exec(const char *sql, EtlArgs *args, int expected,
						   Snapshot snapshot);
extern uint64 etl_spi_exec_opts(const char *sql, EtlArgs *args, int expected,
								Snapshot snapshot, int cursor_options);
extern uint64 etl_spi_query_parallel(const char *sql, EtlArgs *args,
									 Snapshot snapshot);

extern Portal etl_spi_cursor_open(const char *sql, EtlArgs *args,
								  Snapshot snapshot);
extern uint64 etl_spi_cursor_fetch(Portal portal, long count);
extern void etl_spi_cursor_close(Portal portal);
extern Datum etl_spi_column_array(int col);

extern bool etl_spi_isnull(uint64 row, int col);
extern Datum etl_spi_datum(uint64 row, int col, bool *isnull);
extern char *etl_spi_text(uint64 row, int col);
extern int64 etl_spi_int64(uint64 row, int col, int64 if_null);
extern double etl_spi_float8(uint64 row, int col, double if_null);
extern Oid etl_spi_coltype(int col);

#endif /* ETL_SPI_UTIL_H */
