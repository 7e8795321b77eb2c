/*-------------------------------------------------------------------------
 *
 * check_params.h
 *	  The validation of each check kind's params and column type.
 *
 * IDENTIFICATION
 *	  src/checks/check_params.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_CHECK_PARAMS_H
#define ETL_CHECK_PARAMS_H

#include "postgres.h"

#include "checks/check.h"

extern void etl_check_bad_param(EtlCheck *c, const char *what,
								const char *hint);
extern void etl_check_validate_unique(EtlCheck *c, EtlCheckScope *scope);
extern void etl_check_validate_numeric(EtlCheck *c, EtlCheckScope *scope);
extern void etl_check_validate_accepted_values(EtlCheck *c,
											   EtlCheckScope *scope);
extern void etl_check_validate_range(EtlCheck *c, EtlCheckScope *scope);
extern void etl_check_validate_foreign_key(EtlCheck *c, EtlCheckScope *scope);
extern void etl_check_validate_z_score(EtlCheck *c, EtlCheckScope *scope);
extern void etl_check_validate_row_count(EtlCheck *c, EtlCheckScope *scope);
extern void etl_check_validate_expression(EtlCheck *c, EtlCheckScope *scope);
extern void etl_check_validate_freshness(EtlCheck *c, EtlCheckScope *scope);

#endif /* ETL_CHECK_PARAMS_H */
