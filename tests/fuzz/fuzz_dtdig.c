/* libFuzzer harness: dtdig's command line. The input is split on NUL bytes
 * into arguments; whatever the parser accepts goes through the checks
 * dtdig makes before it sends anything. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialtone.h"
#include "dtdig_args.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf = malloc(size + 1);
  if (buf == NULL) {
    return 0;
  }
  memcpy(buf, data, size);
  buf[size] = '\0';
  char *argv[MAX_ARGS + 1];
  int argc = 0;
  argv[argc++] = "dtdig";
  for (size_t i = 0; i < size && argc < MAX_ARGS;) {
    argv[argc++] = buf + i;
    i += strlen(buf + i) + 1;
  }
  argv[argc] = NULL;

  dtdig_args_t args;
  char err[256];
  if (dtdig_parse_args(argc, argv, &args, err, sizeof(err))) {
    if (args.nservers > DTDIG_MAX_SERVERS ||
        (args.name == NULL) == (args.reverse == NULL)) {
      abort();
    }
    char server[128];
    for (size_t i = 0; i < args.nservers; i++) {
      (void)dtdig_server_with_port(args.servers[i], args.port, server,
                                   sizeof(server));
    }
    char rev[128], norm[DT_NAME_BUFSIZE];
    if (args.reverse != NULL) {
      (void)dt_name_reverse(args.reverse, rev, sizeof(rev));
    } else {
      (void)dt_name_normalize(args.name, norm, sizeof(norm));
    }
    uint16_t type;
    if (args.type_str != NULL) {
      (void)dt_type_fromstr(args.type_str, &type);
    }
  } else if (memchr(err, '\0', sizeof(err)) == NULL) {
    abort();
  }
  free(buf);
  return 0;
}
