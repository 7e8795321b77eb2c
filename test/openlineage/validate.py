#!/usr/bin/env python3
"""Validate an OpenLineage RunEvent against a JSON schema (Draft 2020-12).

Usage: validate.py SCHEMA_FILE < event.json

Exits 0 when the event is valid; else prints one line per error on stderr
and exits 1 (2 for bad usage, an unreadable schema or input that is not
JSON).

The schema is checked with python3-jsonschema, formats included where the
installed modules can check them.  As a format checker may be missing (uri
needs rfc3987, date-time rfc3339-validator), the rules that matter most are
also checked here explicitly:
  - run.runId is a UUID (8-4-4-4-12 hexadecimal digits);
  - eventTime is an RFC 3339 date-time with a time zone, and a real one;
  - producer, schemaURL and every facet's _producer and _schemaURL are
    https:// URLs.
"""

import datetime
import json
import re
import sys

import jsonschema

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
)
HTTPS_RE = re.compile(r"^https://[^\s/]+\S*$")


def path_of(parts):
    """A JSON path such as $.outputs[0].facets for an error's location."""
    out = "$"
    for p in parts:
        out += "[%d]" % p if isinstance(p, int) else "." + str(p)
    return out


def check_rfc3339(value):
    """None when value is an RFC 3339 date-time, else why not."""
    if not isinstance(value, str):
        return "is not a string"
    m = RFC3339_RE.match(value)
    if not m:
        return "is not an RFC 3339 date-time with a time zone: %r" % value
    year, month, day, hour, minute, second = (int(x) for x in m.groups()[:6])
    # leap seconds (60) are valid RFC 3339; datetime does not take them
    try:
        datetime.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError as e:
        return "is not a valid date-time (%s): %r" % (e, value)
    if second > 60:
        return "has seconds out of range: %r" % value
    zone = m.group(8)
    if zone not in ("Z", "z"):
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            return "has a time zone offset out of range: %r" % value
    return None


def walk_facet_uris(node, parts, errors):
    """Every _producer and _schemaURL anywhere in the event is https://."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("_producer", "_schemaURL"):
                if not isinstance(value, str) or not HTTPS_RE.match(value):
                    errors.append(
                        "%s: not an https:// URL: %r" % (path_of(parts + [key]), value)
                    )
            walk_facet_uris(value, parts + [key], errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk_facet_uris(value, parts + [i], errors)


def explicit_checks(event):
    errors = []
    if not isinstance(event, dict):
        return ["$: the event is not a JSON object"]
    run = event.get("run")
    run_id = run.get("runId") if isinstance(run, dict) else None
    if not isinstance(run_id, str) or not UUID_RE.match(run_id):
        errors.append("$.run.runId: not a UUID: %r" % (run_id,))
    why = check_rfc3339(event.get("eventTime"))
    if why:
        errors.append("$.eventTime: " + why)
    for key in ("producer", "schemaURL"):
        value = event.get(key)
        if not isinstance(value, str) or not HTTPS_RE.match(value):
            errors.append("$.%s: not an https:// URL: %r" % (key, value))
    walk_facet_uris(event, [], errors)
    return errors


def main(argv):
    if len(argv) != 2:
        print("usage: validate.py SCHEMA_FILE < event.json", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as f:
            schema = json.load(f)
        cls = jsonschema.Draft202012Validator
        cls.check_schema(schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        print("bad schema %s: %s" % (argv[1], e), file=sys.stderr)
        return 2
    try:
        event = json.load(sys.stdin)
    except ValueError as e:
        print("the input is not JSON: %s" % e, file=sys.stderr)
        return 2

    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = []
    for e in sorted(validator.iter_errors(event), key=lambda e: list(e.absolute_path)):
        errors.append("%s: %s" % (path_of(list(e.absolute_path)), e.message))
        # the errors of the branches of an allOf/anyOf, for a useful message
        for sub in e.context or []:
            errors.append(
                "  %s: %s" % (path_of(list(sub.absolute_path)), sub.message)
            )
    errors.extend(explicit_checks(event))

    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
