/* libFuzzer harness: text as domain names, through normalisation, wire
 * form, search-list joining and reverse names, checking the properties the
 * resolver relies on. The input is "NAME" or "NAME\nSUFFIX". */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialtone.h"
#include "name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_name(const char *name) {
  char norm[DT_NAME_BUFSIZE];
  dt_status_t st = dt_name_normalize(name, norm, sizeof(norm));
  uint8_t wire[DT_NAME_WIRE_MAX], wire2[DT_NAME_WIRE_MAX];
  size_t wlen = 0, wlen2 = 0;
  dt_status_t wst = dt__name_to_wire(name, wire, sizeof(wire), &wlen);
  (void)dt__name_ndots(name);
  (void)dt__name_is_absolute(name);
  if (st != DT_OK) {
    if (st != DT_EBADNAME || wst == DT_OK) {
      abort(); /* a full-size buffer only fails on an invalid name */
    }
    return;
  }
  if (wst != DT_OK) {
    abort(); /* valid for one is valid for the other */
  }
  /* The normal form is a fixed point and names the same wire name. */
  char again[DT_NAME_BUFSIZE];
  if (dt_name_normalize(norm, again, sizeof(again)) != DT_OK ||
      strcmp(norm, again) != 0) {
    abort();
  }
  if (dt__name_to_wire(norm, wire2, sizeof(wire2), &wlen2) != DT_OK ||
      wlen2 != wlen || !dt__name_equal(name, norm)) {
    abort();
  }
  /* Small buffers are refused, never overrun. */
  size_t n = strlen(norm);
  char *tight = malloc(n + 1);
  if (tight == NULL) {
    return;
  }
  if (dt_name_normalize(name, tight, n + 1) != DT_OK ||
      dt_name_normalize(name, tight, n) != DT_ENAMETOOLONG) {
    abort();
  }
  free(tight);
  uint8_t *wtight = malloc(wlen);
  if (wtight != NULL &&
      (dt__name_to_wire(name, wtight, wlen, &wlen2) != DT_OK ||
       dt__name_to_wire(name, wtight, wlen - 1, &wlen2) != DT_ENAMETOOLONG)) {
    abort();
  }
  free(wtight);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 4096) {
    return 0; /* names are short; longer inputs only slow the search */
  }
  char *text = malloc(size + 1);
  if (text == NULL) {
    return 0;
  }
  memcpy(text, data, size);
  text[size] = '\0';
  char *suffix = strchr(text, '\n');
  if (suffix != NULL) {
    *suffix++ = '\0';
  }
  check_name(text);

  char rev[80];
  char small[8];
  (void)dt_name_reverse(text, rev, sizeof(rev));
  (void)dt_name_reverse(text, small, sizeof(small));

  if (suffix != NULL) {
    check_name(suffix);
    char joined[DT_NAME_BUFSIZE];
    if (dt__name_join(text, suffix, joined, sizeof(joined)) == DT_OK) {
      check_name(joined);
      if (dt__name_is_absolute(joined)) {
        abort(); /* a joined name still takes the resolver's search rules */
      }
    }
    (void)dt__name_join(text, suffix, small, sizeof(small));
    (void)dt__name_equal(text, suffix);
  }
  free(text);
  return 0;
}
