/* kith CLI: printing results, as human text or one JSON object per line.
 *
 * Results are msgpack maps with string keys (or arrays of them). In JSON a
 * key "time_ms" becomes "time", an RFC 3339 UTC string with milliseconds
 * (likewise expires_ms and last_seen_ms, 0 there giving null).
 * Human output replaces control characters, so text from other members can
 * never drive the terminal. */
#ifndef KITH_CLI_OUT_H
#define KITH_CLI_OUT_H

#include <msgpack.h>
#include <stdint.h>

#include "cli.h"

/* How a human sees one field. fmt: NULL, a unit appended to numbers
 * (" ms"), "yes-word|no-word" for booleans ("online|offline"), or
 * CLI_FMT_TIME for ms since the epoch shown as local time (0: "-"). A NULL
 * label prints the bare value (key: value lines) */
#define CLI_FMT_TIME "@time"
typedef struct cli_field {
  const char *key;
  const char *label;
  const char *fmt;
} cli_field;

/* node_id and name, as "node id: ...", "name: ..." (init and id). */
extern const cli_field CLI_ID_FIELDS[];
/* event_id, as "event id: ..." (every command that makes an event). */
extern const cli_field CLI_EVENT_FIELDS[];

/* A map result: one JSON line, or "label: value" lines in fields order
 * (fields is terminated by a NULL key). */
void cli_out_map(const cli_opts *o, const msgpack_object *map,
                 const cli_field *fields);
/* An array of maps: one JSON line each, or aligned columns, one line each.
 * Returns CLI_ERROR (printed) if the result is not an array. */
int cli_out_rows(const cli_opts *o, const msgpack_object *rows,
                 const cli_field *fields);
/* Prints map as one line of JSON. */
void cli_out_json(const msgpack_object *map);

/* The value of key in map, or NULL. */
const msgpack_object *cli_map_get(const msgpack_object *map, const char *key);
/* The value as human text (g_malloc'ed); multiline keeps newlines and
 * tabs. */
char *cli_out_text(const msgpack_object *v, const char *fmt, int multiline);

/* ms since the Unix epoch as "2026-11-28T19:05:33.123Z" or, local, as
 * "2026-11-28 20:05:33". g_malloc'ed; "?" when out of range. */
char *cli_time_rfc3339(int64_t ms);
char *cli_time_local(int64_t ms);

#endif
