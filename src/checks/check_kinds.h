/*-------------------------------------------------------------------------
 *
 * check_kinds.h
 *	  The kinds of quality checks: one table, looked up by name.
 *
 * IDENTIFICATION
 *	  src/checks/check_kinds.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_CHECK_KINDS_H
#define ETL_CHECK_KINDS_H

#include "postgres.h"

#include "checks/check.h"

extern const EtlCheckKindDef *etl_check_kind_lookup(const char *name);

#endif /* ETL_CHECK_KINDS_H */
