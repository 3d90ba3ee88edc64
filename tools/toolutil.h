/* Small helpers both tools use: strict number parsing for the command
 * line and JSON string output. */
#ifndef DT_TOOLUTIL_H
#define DT_TOOLUTIL_H

#include <stdbool.h>

/* Parses a whole decimal number in [min, max]: no sign, no space, no
 * trailing text. Sets *out on success only. */
bool tool_parse_ulong(const char *s, unsigned long min, unsigned long max,
                      unsigned long *out);

/* Writes s to stdout as a JSON string, "null" for NULL; bytes outside
 * printable ASCII become \u00XX escapes. */
void tool_json_string(const char *s);

#endif
