/* Writes the seed corpus of fuzz_reply: real replies from NSD serving the
 * test zone (tests/fake/test.zone) and from the fake server, over UDP and
 * TCP, each in a file named after its question. Run once by hand when the
 * corpus needs refreshing (`make tests/fuzz/capture` and
 * `tests/fuzz/capture tests/fuzz/corpus/reply`); never part of a build. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake/authsrv.h"
#include "fake/dnsq.h"
#include "fake/fakedns.h"
#include "wire.h"

static const char *outdir;
static int written;

static void save(const char *tag, const char *name, uint16_t type, bool tcp,
                 const uint8_t *pkt, size_t len) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s-%s-%u-%s", outdir, tag, name,
           (unsigned)type, tcp ? "tcp" : "udp");
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(pkt, 1, len, f) != len || fclose(f) != 0) {
    fprintf(stderr, "capture: cannot write %s\n", path);
    exit(1);
  }
  written++;
}

static void ask(const char *tag, uint16_t port, const char *name, uint16_t type,
                bool tcp, bool edns) {
  uint8_t q[DT_WIRE_QUERY_MAX], reply[65535];
  size_t qlen, rlen;
  uint16_t id;
  if (dt__wire_build_query(name, type, edns, q, sizeof(q), &qlen, &id) !=
      DT_OK) {
    fprintf(stderr, "capture: cannot build %s\n", name);
    exit(1);
  }
  dnsq_opts_t o;
  dnsq_opts_init(&o);
  o.port = port;
  o.tcp = tcp;
  if (dnsq_exchange(&o, q, qlen, reply, sizeof(reply), &rlen) == DT_OK) {
    save(tag, name, type, tcp, reply, rlen);
  }
}

static const struct {
  const char *name;
  uint16_t type;
} nsd_questions[] = {
    {"www.dialtone.test", 1},
    {"www.dialtone.test", 28},
    {"multi.dialtone.test", 28},
    {"v4only.dialtone.test", 28},
    {"hop1.dialtone.test", 1},
    {"hop1.dialtone.test", 5},
    {"dangling.dialtone.test", 1},
    {"nowhere.dialtone.test", 1},
    {"dialtone.test", 15},
    {"dialtone.test", 6},
    {"dialtone.test", 2},
    {"dialtone.test", 257},
    {"dialtone.test", 255},
    {"txt.dialtone.test", 16},
    {"_http._tcp.dialtone.test", 33},
    {"big.dialtone.test", 1},
    {"bigtxt.dialtone.test", 16},
    {"ttl0.dialtone.test", 1},
    {"20.2.0.192.in-addr.arpa", 12},
    {"10.2.0.192.in-addr.arpa", 12},
};

static const char *fake_zone =
    "c1.fz.test. 100 IN CNAME c2.fz.test.\n"
    "c2.fz.test. 50 IN CNAME c3.fz.test.\n"
    "c3.fz.test. 400 IN A 192.0.2.3\n"
    "loop1.fz.test. 60 IN CNAME loop2.fz.test.\n"
    "loop2.fz.test. 60 IN CNAME loop1.fz.test.\n"
    "fz.test. 60 IN SOA ns.fz.test. admin.fz.test. 1 7200 900 1209600 30\n"
    "svc.fz.test. 60 IN HTTPS 1 . alpn=h2 port=443\n"
    "odd.fz.test. 60 IN TYPE65534 \\# 3 0a0b0c\n"
    "naptr.fz.test. 60 IN NAPTR 100 10 \"u\" \"E2U+sip\" "
    "\"!^.*$!sip:info@example.com!\" .\n"
    "esc.fz.test. 60 IN TXT \"a\\\\b\\\"c\" \"\\200\\001\"\n"
    "tc.fz.test. 60 IN A 192.0.2.9\n"
    ";! tc tc.fz.test. A 1\n";

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: capture OUTDIR\n");
    return 1;
  }
  outdir = argv[1];
  authsrv_t *nsd = NULL;
  if (authsrv_start(&nsd) == AUTHSRV_OK) {
    uint16_t port = authsrv_port(nsd);
    for (size_t i = 0; i < sizeof(nsd_questions) / sizeof(nsd_questions[0]);
         i++) {
      ask("nsd", port, nsd_questions[i].name, nsd_questions[i].type, false,
          true);
      ask("nsd", port, nsd_questions[i].name, nsd_questions[i].type, true,
          true);
    }
    ask("nsd", port, "big.dialtone.test", 1, false, false); /* TC at 512 */
    authsrv_stop_free(nsd);
  } else {
    fprintf(stderr, "capture: nsd did not start: %s\n", authsrv_last_error());
  }

  fakedns_t *fake = NULL;
  unsigned bad = 0;
  if (fakedns_new(NULL, &fake) != DT_OK ||
      fakedns_load(fake, fake_zone, &bad) != DT_OK ||
      fakedns_start(fake) != DT_OK) {
    fprintf(stderr, "capture: fake server failed (line %u)\n", bad);
    return 1;
  }
  static const char *names[] = {"c1.fz.test",    "loop1.fz.test", "svc.fz.test",
                                "naptr.fz.test", "esc.fz.test",   "tc.fz.test",
                                "none.fz.test"};
  static const uint16_t types[] = {1, 1, 65, 35, 16, 1, 28};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    ask("fake", fakedns_port(fake), names[i], types[i], false, true);
    ask("fake", fakedns_port(fake), names[i], types[i], true, false);
  }
  ask("fake", fakedns_port(fake), "odd.fz.test", 65534, false, true);
  fakedns_behaviour_t b;
  fakedns_behaviour_init(&b);
  b.rcode = 2; /* SERVFAIL */
  fakedns_set_behaviour(fake, "c3.fz.test", 1, &b);
  ask("fake", fakedns_port(fake), "c3.fz.test", 1, false, true);
  fakedns_free(fake);
  printf("capture: %d replies in %s\n", written, outdir);
  return written > 0 ? 0 : 1;
}
