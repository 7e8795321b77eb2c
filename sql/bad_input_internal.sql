-- bad_input_internal: the lookup etl_internal.etl_schedule_of, which
-- PUBLIC may not call (etl.status reads the schedules through
-- etl_schedules), answers NULL for a NULL pipeline, as bad_input checks for
-- the lookups everyone may call.  Run by a superuser only.
SELECT has_function_privilege('public', 'etl_internal.etl_schedule_of(text)', 'EXECUTE')
         AS public_may_call,
       etl_internal.etl_schedule_of(NULL) IS NULL AS schedule_of;
