#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dialtone.h"
#include "name.h"

/* Builds "x" * n labels of the given lengths, joined by dots, into buf. */
static const char *labels(char *buf, const size_t *lens, size_t n,
                          bool trailing_dot) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (i != 0) {
      buf[o++] = '.';
    }
    memset(buf + o, 'a' + (int)(i % 26), lens[i]);
    o += lens[i];
  }
  if (trailing_dot) {
    buf[o++] = '.';
  }
  buf[o] = '\0';
  return buf;
}

struct norm_case {
  const char *in;
  dt_status_t st;
  const char *out;
};

static const struct norm_case norm_cases[] = {
    {"example.com", DT_OK, "example.com"},
    {"A.Example.", DT_OK, "a.example"},
    {"WWW.EXAMPLE.COM", DT_OK, "www.example.com"},
    {".", DT_OK, "."},
    {"a", DT_OK, "a"},
    {"a.", DT_OK, "a"},
    {"xn--bcher-kva.example", DT_OK, "xn--bcher-kva.example"},
    /* Escaped dots and backslashes stay inside their label. */
    {"a\\.b.example", DT_OK, "a\\.b.example"},
    {"a\\046b", DT_OK, "a\\.b"},
    {"a\\\\b", DT_OK, "a\\\\b"},
    {"a\\092b", DT_OK, "a\\\\b"},
    /* "\X" of an ordinary character is just the character, folded. */
    {"\\A\\b", DT_OK, "ab"},
    {"\\065", DT_OK, "a"},
    {"\\255\\000x", DT_OK, "\\255\\000x"},
    {"a b", DT_OK, "a\\032b"},
    {"a\\032b", DT_OK, "a\\032b"},
    {"tab\\009", DT_OK, "tab\\009"},
    {"\\127", DT_OK, "\\127"},
    /* Bytes above 0x7f are never case folded. */
    {"\\196\\228", DT_OK, "\\196\\228"},
    {"\xc3\x84", DT_OK, "\\195\\132"},
    {"_srv._tcp.Example", DT_OK, "_srv._tcp.example"},
    {"a\\.", DT_OK, "a\\."},
    {"a\\..", DT_OK, "a\\."},
    {"", DT_EBADNAME, NULL},
    {"..", DT_EBADNAME, NULL},
    {".a", DT_EBADNAME, NULL},
    {"a..b", DT_EBADNAME, NULL},
    {"a..", DT_EBADNAME, NULL},
    {"a\\", DT_EBADNAME, NULL},
    {"a.b\\", DT_EBADNAME, NULL},
    {"\\256", DT_EBADNAME, NULL},
    {"\\999", DT_EBADNAME, NULL},
    {"\\1", DT_EBADNAME, NULL},
    {"\\12", DT_EBADNAME, NULL},
    {"\\12x", DT_EBADNAME, NULL},
    {"x\\1.y", DT_EBADNAME, NULL},
};

static void test_normalize_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
    const struct norm_case *c = &norm_cases[i];
    char out[DT_NAME_BUFSIZE];
    strcpy(out, "untouched");
    dt_status_t st = dt_name_normalize(c->in, out, sizeof(out));
    if (st != c->st) {
      fail_msg("case %zu \"%s\": got %s, want %s", i, c->in, dt_status_name(st),
               dt_status_name(c->st));
    }
    if (c->out != NULL) {
      assert_string_equal(out, c->out);
      /* The normal form is a fixed point. */
      char again[DT_NAME_BUFSIZE];
      assert_int_equal(dt_name_normalize(out, again, sizeof(again)), DT_OK);
      assert_string_equal(again, out);
    } else {
      assert_string_equal(out, "untouched");
    }
  }
}

static void test_normalize_lengths(void **state) {
  (void)state;
  char name[2048];
  char out[DT_NAME_BUFSIZE];
  uint8_t wire[DT_NAME_WIRE_MAX];
  size_t wlen;

  /* Labels: 63 is the longest, 64 is too long. */
  size_t l63[] = {63};
  size_t l64[] = {64};
  assert_int_equal(
      dt_name_normalize(labels(name, l63, 1, false), out, sizeof(out)), DT_OK);
  assert_int_equal(strlen(out), 63);
  assert_int_equal(
      dt_name_normalize(labels(name, l64, 1, false), out, sizeof(out)),
      DT_EBADNAME);

  /* 63+63+63+61: 253 characters, 255 bytes in wire form: the largest. */
  size_t max[] = {63, 63, 63, 61};
  labels(name, max, 4, false);
  assert_int_equal(strlen(name), 253);
  assert_int_equal(dt_name_normalize(name, out, sizeof(out)), DT_OK);
  assert_int_equal(dt__name_to_wire(name, wire, sizeof(wire), &wlen), DT_OK);
  assert_int_equal(wlen, 255);
  /* The same with a trailing dot is the same name. */
  labels(name, max, 4, true);
  assert_int_equal(dt_name_normalize(name, out, sizeof(out)), DT_OK);
  assert_int_equal(strlen(out), 253);

  /* One byte more is 256 in wire form, whichever label grows. */
  size_t over1[] = {63, 63, 63, 62};
  size_t over2[] = {62, 62, 62, 62, 2};
  assert_int_equal(
      dt_name_normalize(labels(name, over1, 4, false), out, sizeof(out)),
      DT_EBADNAME);
  assert_int_equal(
      dt_name_normalize(labels(name, over1, 4, true), out, sizeof(out)),
      DT_EBADNAME);
  assert_int_equal(
      dt_name_normalize(labels(name, over2, 5, false), out, sizeof(out)),
      DT_EBADNAME);
  size_t fits2[] = {62, 62, 62, 62, 1};
  assert_int_equal(
      dt_name_normalize(labels(name, fits2, 5, false), out, sizeof(out)),
      DT_OK);

  /* 127 one-byte labels: 255 bytes; 128 are too many. */
  size_t ones[128];
  for (size_t i = 0; i < 128; i++) {
    ones[i] = 1;
  }
  assert_int_equal(
      dt_name_normalize(labels(name, ones, 127, false), out, sizeof(out)),
      DT_OK);
  assert_int_equal(
      dt_name_normalize(labels(name, ones, 128, false), out, sizeof(out)),
      DT_EBADNAME);

  /* Escapes count as the byte they stand for: 63 "\DDD" is one label. */
  size_t o = 0;
  for (int i = 0; i < 63; i++) {
    memcpy(name + o, "\\001", 4);
    o += 4;
  }
  name[o] = '\0';
  assert_int_equal(dt_name_normalize(name, out, sizeof(out)), DT_OK);
  memcpy(name + o, "\\001", 5);
  assert_int_equal(dt_name_normalize(name, out, sizeof(out)), DT_EBADNAME);

  /* The longest normal form (every byte escaped) fits DT_NAME_BUFSIZE. */
  o = 0;
  for (int l = 0; l < 4; l++) {
    for (int i = 0; i < (l < 3 ? 63 : 61); i++) {
      memcpy(name + o, "\\200", 4);
      o += 4;
    }
    name[o++] = '.';
  }
  name[o] = '\0';
  assert_int_equal(dt_name_normalize(name, out, sizeof(out)), DT_OK);
  assert_int_equal(strlen(out), 250 * 4 + 3);
}

static void test_normalize_args(void **state) {
  (void)state;
  char out[8];
  assert_int_equal(dt_name_normalize(NULL, out, sizeof(out)), DT_EINVAL);
  assert_int_equal(dt_name_normalize("a", NULL, 8), DT_EINVAL);
  strcpy(out, "keep");
  assert_int_equal(dt_name_normalize("abcdefgh", out, sizeof(out)),
                   DT_ENAMETOOLONG);
  assert_string_equal(out, "keep");
  assert_int_equal(dt_name_normalize("abcdefg", out, sizeof(out)), DT_OK);
  assert_string_equal(out, "abcdefg");
  assert_int_equal(dt_name_normalize(".", out, 1), DT_ENAMETOOLONG);
  assert_int_equal(dt_name_normalize(".", out, 0), DT_ENAMETOOLONG);
  /* A bad name is reported as such even when out is too small. */
  assert_int_equal(dt_name_normalize("a..b", out, 1), DT_EBADNAME);
}

struct wire_case {
  const char *in;
  size_t len;
  const char *wire;
};

static void test_to_wire(void **state) {
  (void)state;
  static const struct wire_case cases[] = {
      {".", 1, "\0"},          {"a", 3, "\1a\0"},
      {"a.", 3, "\1a\0"},      {"Ab.c", 6, "\2Ab\1c\0"},
      {"a\\.b", 5, "\3a.b\0"}, {"a\\046b.c", 7, "\3a.b\1c\0"},
      {"\\000", 3, "\1\0\0"},
  };
  uint8_t wire[DT_NAME_WIRE_MAX];
  size_t wlen = 0;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    assert_int_equal(dt__name_to_wire(cases[i].in, wire, sizeof(wire), &wlen),
                     DT_OK);
    assert_int_equal(wlen, cases[i].len);
    assert_memory_equal(wire, cases[i].wire, wlen);
  }
  wlen = 99;
  assert_int_equal(dt__name_to_wire("a..b", wire, sizeof(wire), &wlen),
                   DT_EBADNAME);
  assert_int_equal(wlen, 99);
  assert_int_equal(dt__name_to_wire("abc", wire, 4, &wlen), DT_ENAMETOOLONG);
  assert_int_equal(dt__name_to_wire("abc", wire, 5, &wlen), DT_OK);
  assert_int_equal(wlen, 5);
  assert_int_equal(dt__name_to_wire(NULL, wire, 5, &wlen), DT_EINVAL);
  assert_int_equal(dt__name_to_wire("a", NULL, 5, &wlen), DT_EINVAL);
  assert_int_equal(dt__name_to_wire("a", wire, 5, NULL), DT_EINVAL);
}

struct dots_case {
  const char *name;
  size_t ndots;
  bool absolute;
};

static void test_ndots_absolute(void **state) {
  (void)state;
  static const struct dots_case cases[] = {
      {"a", 0, false},       {"a.", 0, true},       {".", 0, true},
      {"a.b", 1, false},     {"a.b.", 1, true},     {"a.b.c", 2, false},
      {"a\\.b", 0, false},   {"a\\.", 0, false},    {"a\\\\.", 0, true},
      {"a\\\\.b", 1, false}, {"a\\046b", 0, false}, {"a\\046.", 0, true},
      {"a\\", 0, false},     {"", 0, false},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (dt__name_ndots(cases[i].name) != cases[i].ndots ||
        dt__name_is_absolute(cases[i].name) != cases[i].absolute) {
      fail_msg("case %zu \"%s\"", i, cases[i].name);
    }
  }
  assert_int_equal(dt__name_ndots(NULL), 0);
  assert_false(dt__name_is_absolute(NULL));
}

struct equal_case {
  const char *a;
  const char *b;
  bool equal;
};

static void test_equal(void **state) {
  (void)state;
  static const struct equal_case cases[] = {
      {"example.com", "example.com", true},
      {"Example.COM", "example.com.", true},
      {"a\\046b", "a\\.b", true},
      {"a\\065", "aA", true},
      {".", ".", true},
      {"a.b", "a\\.b", false},
      {"a", "a.b", false},
      {"ab", "a.b", false},
      {"\\196", "\\228", false},
      {"a..b", "a..b", false},
      {"", "", false},
      {"a", ".", false},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (dt__name_equal(cases[i].a, cases[i].b) != cases[i].equal ||
        dt__name_equal(cases[i].b, cases[i].a) != cases[i].equal) {
      fail_msg("case %zu \"%s\" \"%s\"", i, cases[i].a, cases[i].b);
    }
  }
  assert_false(dt__name_equal(NULL, "a"));
  assert_false(dt__name_equal("a", NULL));
}

struct join_case {
  const char *name;
  const char *suffix;
  dt_status_t st;
  const char *out;
};

static void test_join(void **state) {
  (void)state;
  static const struct join_case cases[] = {
      {"www", "example.com", DT_OK, "www.example.com"},
      {"www", "example.com.", DT_OK, "www.example.com"},
      {"WWW.x", "Example", DT_OK, "WWW.x.Example"},
      {"www", ".", DT_OK, "www"},
      {"a\\.", "b", DT_OK, "a\\..b"},
      {"a", "b\\.", DT_OK, "a.b\\."},
      {"www.", "example.com", DT_EINVAL, NULL},
      {".", "example.com", DT_EINVAL, NULL},
      {"", "example.com", DT_EBADNAME, NULL},
      {"a..b", "example.com", DT_EBADNAME, NULL},
      {"www", "", DT_EBADNAME, NULL},
      {"www", "a..b", DT_EBADNAME, NULL},
  };
  char out[DT_NAME_BUFSIZE];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    strcpy(out, "untouched");
    dt_status_t st =
        dt__name_join(cases[i].name, cases[i].suffix, out, sizeof(out));
    if (st != cases[i].st) {
      fail_msg("case %zu: got %s", i, dt_status_name(st));
    }
    assert_string_equal(out, cases[i].out ? cases[i].out : "untouched");
  }

  /* 253 characters is the longest result; one more is not a name. */
  char name[300], suffix[300];
  size_t nl[] = {63, 63};
  size_t sl[] = {63, 61};
  labels(name, nl, 2, false);
  labels(suffix, sl, 2, false);
  assert_int_equal(dt__name_join(name, suffix, out, sizeof(out)), DT_OK);
  assert_int_equal(strlen(out), 253);
  assert_true(dt__name_is_absolute(suffix) == false);
  size_t sl2[] = {63, 62};
  labels(suffix, sl2, 2, true);
  assert_int_equal(dt__name_join(name, suffix, out, sizeof(out)), DT_EBADNAME);

  /* Too small an output buffer, by one. */
  assert_int_equal(dt__name_join("ab", "cd", out, 5), DT_ENAMETOOLONG);
  assert_int_equal(dt__name_join("ab", "cd", out, 6), DT_OK);
  assert_string_equal(out, "ab.cd");
  assert_int_equal(dt__name_join(NULL, "cd", out, 6), DT_EINVAL);
  assert_int_equal(dt__name_join("ab", NULL, out, 6), DT_EINVAL);
  assert_int_equal(dt__name_join("ab", "cd", NULL, 6), DT_EINVAL);
}

struct reverse_case {
  const char *addr;
  dt_status_t st;
  const char *out;
};

static void test_reverse(void **state) {
  (void)state;
  static const struct reverse_case cases[] = {
      {"192.0.2.1", DT_OK, "1.2.0.192.in-addr.arpa"},
      {"0.0.0.0", DT_OK, "0.0.0.0.in-addr.arpa"},
      {"255.255.255.255", DT_OK, "255.255.255.255.in-addr.arpa"},
      {"2001:db8::1", DT_OK,
       "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
       "ip6.arpa"},
      {"::1", DT_OK,
       "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
       "ip6.arpa"},
      {"2001:DB8:ABCD:12::FEDC", DT_OK,
       "c.d.e.f.0.0.0.0.0.0.0.0.0.0.0.0.2.1.0.0.d.c.b.a.8.b.d.0.1.0.0.2."
       "ip6.arpa"},
      /* Mapped addresses stay under ip6.arpa. */
      {"::ffff:192.0.2.1", DT_OK,
       "1.0.2.0.0.0.0.c.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
       "ip6.arpa"},
      {"", DT_EINVAL, NULL},
      {"192.0.2", DT_EINVAL, NULL},
      {"192.0.2.256", DT_EINVAL, NULL},
      {"example.com", DT_EINVAL, NULL},
      {"2001:db8::1::2", DT_EINVAL, NULL},
      {"fe80::1%lo", DT_EINVAL, NULL},
      {" 192.0.2.1", DT_EINVAL, NULL},
  };
  char out[74];
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    strcpy(out, "untouched");
    dt_status_t st = dt_name_reverse(cases[i].addr, out, sizeof(out));
    if (st != cases[i].st) {
      fail_msg("case %zu \"%s\": got %s", i, cases[i].addr, dt_status_name(st));
    }
    assert_string_equal(out, cases[i].out ? cases[i].out : "untouched");
    if (cases[i].out != NULL) {
      /* A reverse name is a valid name already in normal form. */
      char norm[DT_NAME_BUFSIZE];
      assert_int_equal(dt_name_normalize(out, norm, sizeof(norm)), DT_OK);
      assert_string_equal(norm, out);
    }
  }
  /* 73 bytes hold the longest; 72 do not. */
  assert_int_equal(dt_name_reverse("::1", out, 72), DT_ENAMETOOLONG);
  assert_int_equal(dt_name_reverse("::1", out, 73), DT_OK);
  assert_int_equal(dt_name_reverse("192.0.2.1", out, 22), DT_ENAMETOOLONG);
  assert_int_equal(dt_name_reverse("192.0.2.1", out, 23), DT_OK);
  assert_int_equal(dt_name_reverse(NULL, out, 73), DT_EINVAL);
  assert_int_equal(dt_name_reverse("::1", NULL, 73), DT_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_normalize_table),
      cmocka_unit_test(test_normalize_lengths),
      cmocka_unit_test(test_normalize_args),
      cmocka_unit_test(test_to_wire),
      cmocka_unit_test(test_ndots_absolute),
      cmocka_unit_test(test_equal),
      cmocka_unit_test(test_join),
      cmocka_unit_test(test_reverse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
