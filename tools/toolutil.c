#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "toolutil.h"

bool tool_parse_ulong(const char *s, unsigned long min, unsigned long max,
                      unsigned long *out) {
  char *end;
  if (s == NULL || *s == '\0' || *s == '-' || *s == '+') {
    return false;
  }
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*end != '\0' || errno != 0 || v < min || v > max) {
    return false;
  }
  *out = v;
  return true;
}

void tool_json_string(const char *s) {
  if (s == NULL) {
    fputs("null", stdout);
    return;
  }
  putchar('"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      printf("\\%c", *p);
    } else if (*p < 0x20 || *p >= 0x7f) {
      printf("\\u%04x", *p);
    } else {
      putchar(*p);
    }
  }
  putchar('"');
}
