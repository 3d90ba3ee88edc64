/* dtdig's command line, apart from the program so that the fuzzing harness
 * (tests/fuzz/fuzz_dtdig.c) runs the very parser dtdig uses. */
#ifndef DTDIG_ARGS_H
#define DTDIG_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#define DTDIG_MAX_SERVERS 8

typedef struct {
  const char *servers[DTDIG_MAX_SERVERS];
  size_t nservers;
  unsigned long port; /* 0: as written in each @SERVER, else 53 */
  const char *name;
  const char *type_str;
  const char *reverse;
  const char *resolv_conf;
  unsigned long count;
  long timeout_ms;
  long tries;
  long interval_ms;
  bool tcp, short_out, json, nocache, search, dump_cache, dns0x20;
} dtdig_args_t;

/* Parses argv (argv[0] is the program); on error writes a message to err
 * ("help" for -h) and returns false. Strings in *a point into argv.
 * Nothing is sent before the whole line has been accepted. */
bool dtdig_parse_args(int argc, char **argv, dtdig_args_t *a, char *err,
                      size_t errlen);

/* "ADDR" with -p PORT becomes "ADDR:PORT" or "[V6]:PORT"; port 0 leaves it
 * as written. False when out is too small. */
bool dtdig_server_with_port(const char *s, unsigned long port, char *out,
                            size_t len);

#endif
