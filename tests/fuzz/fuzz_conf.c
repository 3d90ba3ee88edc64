/* libFuzzer harness: text as resolv.conf and as a hosts file, then hosts
 * lookups of the words the text itself contains. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void lookups(const dt_hosts_t *h, const char *word) {
  static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
  for (size_t f = 0; f < 3; f++) {
    dt_hosts_addr_t addrs[4];
    const char *canon = NULL;
    size_t n = dt__hosts_lookup(h, word, families[f], addrs, 4, &canon);
    if (n > 0 && canon == NULL) {
      abort(); /* found addresses must come with their canonical name */
    }
    (void)dt__hosts_lookup(h, word, families[f], NULL, 0, NULL);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The parsers take text with a length, not a C string: no terminator,
   * so reading past the end shows under ASan. */
  const char *text = (const char *)data;

  dt_resolv_conf_t conf;
  if (dt__resolv_conf_parse(text, size, &conf) != DT_OK) {
    abort();
  }
  if (conf.nservers > DT_CONF_MAX_SERVERS ||
      conf.nsearch > DT_CONF_MAX_SEARCH) {
    abort();
  }
  for (size_t i = 0; i < conf.nsearch; i++) {
    if (memchr(conf.search[i], '\0', DT_NAME_BUFSIZE) == NULL) {
      abort();
    }
  }

  dt_hosts_t *h = NULL;
  dt_status_t st = dt__hosts_parse(text, size, &h);
  if (st != DT_OK) {
    return 0;
  }
  (void)dt__hosts_lines_ignored(h);
  /* The first few words of the text, as names to look up. */
  char word[300];
  size_t words = 0, w = 0;
  for (size_t i = 0; i <= size && words < 16; i++) {
    char c = i < size ? text[i] : ' ';
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0') {
      if (w > 0) {
        word[w] = '\0';
        lookups(h, word);
        words++;
        w = 0;
      }
    } else if (w < sizeof(word) - 1) {
      word[w++] = c;
    }
  }
  lookups(h, "localhost");
  lookups(h, "");
  dt__hosts_free(h);
  return 0;
}
