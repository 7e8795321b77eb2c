/*-------------------------------------------------------------------------
 *
 * security.h
 *	  Who a statement of etl_ext runs as, and under which settings.
 *
 * IDENTIFICATION
 *	  src/base/security.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ETL_SECURITY_H
#define ETL_SECURITY_H

#include "postgres.h"

typedef struct EtlUserSwitch
{
	Oid saved_userid;
	int saved_sec_context;
	int nestlevel; /* GUC nest level of the switch */
	bool active;
} EtlUserSwitch;

extern void etl_become_owner(EtlUserSwitch *sw, Oid owner);
extern void etl_become_extension_owner(EtlUserSwitch *sw);
extern void etl_restore_user(EtlUserSwitch *sw);

extern int etl_pin_settings(void);
extern void etl_unpin_settings(int nestlevel);

extern Oid etl_extension_owner(void);
extern void etl_check_pipeline_owner(const char *pipeline, Oid owner,
									 const char *action);
extern void etl_check_role_exists(const char *pipeline, Oid owner);

#endif /* ETL_SECURITY_H */
