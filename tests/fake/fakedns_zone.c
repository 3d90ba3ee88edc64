/* The fake server's data: records, behaviours, counters, and the turning of
 * one received message into the messages to send back. Everything here runs
 * with srv->lock held. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fakedns_int.h"

/* The EDNS payload size the fake advertises and honours at most. */
#define FK_EDNS_SIZE 1232
#define FK_PLAIN_SIZE 512

void fakedns__key_from_rdf(fakedns__key_t *key, const ldns_rdf *dname,
                           uint16_t type) {
  memset(key, 0, sizeof(*key));
  key->type = type;
  size_t n = ldns_rdf_size(dname);
  if (n > sizeof(key->wire)) {
    n = sizeof(key->wire);
  }
  memcpy(key->wire, ldns_rdf_data(dname), n);
  key->len = (uint8_t)n;
  /* Lower-case label bytes only: length octets are below 64, never in
   * 'A'..'Z', but walking the labels keeps binary labels honest too. */
  size_t i = 0;
  while (i < n && key->wire[i] != 0) {
    size_t lab = key->wire[i];
    for (size_t j = i + 1; j <= i + lab && j < n; j++) {
      uint8_t c = key->wire[j];
      if (c >= 'A' && c <= 'Z') {
        key->wire[j] = (uint8_t)(c - 'A' + 'a');
      }
    }
    i += lab + 1;
  }
}

bool fakedns__key_from_str(fakedns__key_t *key, const char *name,
                           uint16_t type) {
  if (name == NULL) {
    return false;
  }
  ldns_rdf *d = ldns_dname_new_frm_str(name);
  if (d == NULL) {
    return false;
  }
  fakedns__key_from_rdf(key, d, type);
  ldns_rdf_deep_free(d);
  return true;
}

fakedns__slot_t *fakedns__slot(fakedns_t *srv, const fakedns__key_t *key,
                               bool create) {
  fakedns__slot_t *s = NULL;
  HASH_FIND(hh, srv->slots, key, sizeof(*key), s);
  if (s != NULL || !create) {
    return s;
  }
  s = calloc(1, sizeof(*s));
  if (s == NULL) {
    return NULL;
  }
  s->key = *key;
  HASH_ADD(hh, srv->slots, key, sizeof(s->key), s);
  if (s->hh.tbl == NULL) {
    free(s);
    return NULL;
  }
  return s;
}

uint64_t fakedns__random(fakedns_t *srv) {
  /* xorshift64*: plenty for IDs and garbage, and no global state. */
  uint64_t x = srv->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  srv->rng = x;
  return x * 0x2545F4914F6CDD1DULL;
}

void fakedns__beh_free(fakedns__beh_t *b) {
  if (b == NULL) {
    return;
  }
  free(b->garbage);
  free(b->spoof_text);
  ldns_rr_free(b->spoof);
  free(b);
}

void fakedns__zone_clear(fakedns_t *srv) {
  fakedns__name_t *n, *ntmp;
  HASH_ITER(hh, srv->names, n, ntmp) {
    HASH_DEL(srv->names, n);
    ldns_rr_list_deep_free(n->rrs);
    free(n);
  }
  fakedns__slot_t *s, *stmp;
  HASH_ITER(hh, srv->slots, s, stmp) {
    fakedns__beh_free(s->beh);
    s->beh = NULL;
  }
  fakedns__beh_free(srv->dflt);
  srv->dflt = NULL;
}

void fakedns__zone_free(fakedns_t *srv) {
  fakedns__zone_clear(srv);
  fakedns__slot_t *s, *stmp;
  HASH_ITER(hh, srv->slots, s, stmp) {
    HASH_DEL(srv->slots, s);
    free(s);
  }
}

/* --- scripting ------------------------------------------------------------ */

dt_status_t fakedns_add(fakedns_t *srv, const char *rr_line) {
  if (srv == NULL || rr_line == NULL) {
    return DT_EINVAL;
  }
  ldns_rr *rr = NULL;
  if (ldns_rr_new_frm_str(&rr, rr_line, 0, NULL, NULL) != LDNS_STATUS_OK) {
    return DT_EINVAL;
  }
  fakedns__key_t key;
  fakedns__key_from_rdf(&key, ldns_rr_owner(rr), 0);
  dt_status_t st = DT_ENOMEM;
  pthread_mutex_lock(&srv->lock);
  fakedns__name_t *n = NULL;
  HASH_FIND(hh, srv->names, &key, sizeof(key), n);
  if (n == NULL) {
    n = calloc(1, sizeof(*n));
    if (n == NULL) {
      goto done;
    }
    n->key = key;
    n->rrs = ldns_rr_list_new();
    if (n->rrs == NULL) {
      free(n);
      goto done;
    }
    HASH_ADD(hh, srv->names, key, sizeof(n->key), n);
    if (n->hh.tbl == NULL) {
      ldns_rr_list_free(n->rrs);
      free(n);
      goto done;
    }
  }
  if (!ldns_rr_list_push_rr(n->rrs, rr)) {
    goto done;
  }
  rr = NULL;
  st = DT_OK;
done:
  pthread_mutex_unlock(&srv->lock);
  ldns_rr_free(rr);
  return st;
}

void fakedns_clear(fakedns_t *srv) {
  pthread_mutex_lock(&srv->lock);
  fakedns__zone_clear(srv);
  pthread_mutex_unlock(&srv->lock);
}

void fakedns_behaviour_init(fakedns_behaviour_t *b) {
  memset(b, 0, sizeof(*b));
  b->rcode = FAKEDNS_RCODE_DATA;
  b->garbage = FAKEDNS_GARBAGE_NONE;
  b->edns = FAKEDNS_EDNS_ECHO;
}

/* Copies b with everything it points to; NULL when b is invalid or memory
 * runs out (*st says which). */
static fakedns__beh_t *beh_copy(const fakedns_behaviour_t *b, dt_status_t *st) {
  *st = DT_EINVAL;
  if (b->rcode < FAKEDNS_RCODE_DATA || b->rcode > 15 ||
      (b->garbage != FAKEDNS_GARBAGE_NONE && b->garbage_bytes != NULL &&
       b->garbage_len == 0)) {
    return NULL;
  }
  fakedns__beh_t *c = calloc(1, sizeof(*c));
  if (c == NULL) {
    *st = DT_ENOMEM;
    return NULL;
  }
  c->pub = *b;
  c->pub.spoof_rr = NULL;
  c->pub.garbage_bytes = NULL;
  if (b->spoof_rr != NULL) {
    if (ldns_rr_new_frm_str(&c->spoof, b->spoof_rr, 0, NULL, NULL) !=
        LDNS_STATUS_OK) {
      c->spoof = NULL;
      goto fail;
    }
    c->spoof_text = strdup(b->spoof_rr);
    if (c->spoof_text == NULL) {
      *st = DT_ENOMEM;
      goto fail;
    }
    c->pub.spoof_rr = c->spoof_text;
  }
  if (b->garbage_bytes != NULL) {
    c->garbage = malloc(b->garbage_len);
    if (c->garbage == NULL) {
      *st = DT_ENOMEM;
      goto fail;
    }
    memcpy(c->garbage, b->garbage_bytes, b->garbage_len);
    c->pub.garbage_bytes = c->garbage;
  }
  *st = DT_OK;
  return c;
fail:
  fakedns__beh_free(c);
  return NULL;
}

dt_status_t fakedns_set_behaviour(fakedns_t *srv, const char *name,
                                  uint16_t type, const fakedns_behaviour_t *b) {
  fakedns__key_t key;
  if (srv == NULL || !fakedns__key_from_str(&key, name, type)) {
    return DT_EINVAL;
  }
  dt_status_t st = DT_OK;
  /* Copied before the old one is freed: b may point into the old one (the
   * loader amends behaviours that way). */
  fakedns__beh_t *c = NULL;
  pthread_mutex_lock(&srv->lock);
  if (b != NULL) {
    c = beh_copy(b, &st);
    if (c == NULL) {
      goto done;
    }
  }
  fakedns__slot_t *s = fakedns__slot(srv, &key, c != NULL);
  if (s == NULL) {
    st = c != NULL ? DT_ENOMEM : DT_OK;
    fakedns__beh_free(c);
    goto done;
  }
  fakedns__beh_free(s->beh);
  s->beh = c;
done:
  pthread_mutex_unlock(&srv->lock);
  return st;
}

dt_status_t fakedns_set_default(fakedns_t *srv, const fakedns_behaviour_t *b) {
  if (srv == NULL) {
    return DT_EINVAL;
  }
  dt_status_t st = DT_OK;
  fakedns__beh_t *c = NULL;
  pthread_mutex_lock(&srv->lock);
  if (b != NULL) {
    c = beh_copy(b, &st);
  }
  if (st == DT_OK) {
    fakedns__beh_free(srv->dflt);
    srv->dflt = c;
  }
  pthread_mutex_unlock(&srv->lock);
  return st;
}

void fakedns__get_behaviour(fakedns_t *srv, const fakedns__key_t *key,
                            fakedns_behaviour_t *out) {
  fakedns_behaviour_init(out);
  pthread_mutex_lock(&srv->lock);
  const fakedns__beh_t *b = srv->dflt;
  if (key != NULL) {
    fakedns__slot_t *s = fakedns__slot(srv, key, false);
    b = s != NULL ? s->beh : NULL;
  }
  if (b != NULL) {
    *out = b->pub;
  }
  pthread_mutex_unlock(&srv->lock);
}

/* --- answers -------------------------------------------------------------- */

static const ldns_rr_list *find_rrs(fakedns_t *srv, const ldns_rdf *dname) {
  fakedns__key_t key;
  fakedns__key_from_rdf(&key, dname, 0);
  fakedns__name_t *n = NULL;
  HASH_FIND(hh, srv->names, &key, sizeof(key), n);
  return n != NULL ? n->rrs : NULL;
}

/* Pushes a copy of rr to a section, renamed to owner when not NULL. */
static bool push_copy(ldns_pkt *p, ldns_pkt_section sec, const ldns_rr *rr,
                      const ldns_rdf *owner) {
  ldns_rr *c = ldns_rr_clone(rr);
  if (c == NULL) {
    return false;
  }
  if (owner != NULL) {
    ldns_rdf *o = ldns_rdf_clone(owner);
    if (o == NULL) {
      ldns_rr_free(c);
      return false;
    }
    ldns_rdf_deep_free(ldns_rr_owner(c));
    ldns_rr_set_owner(c, o);
  }
  if (!ldns_pkt_push_rr(p, sec, c)) {
    ldns_rr_free(c);
    return false;
  }
  return true;
}

/* The SOA of the closest enclosing zone of name, or NULL. */
static const ldns_rr *find_soa(fakedns_t *srv, const ldns_rdf *name) {
  ldns_rdf *cur = ldns_rdf_clone(name);
  const ldns_rr *soa = NULL;
  while (cur != NULL && soa == NULL) {
    const ldns_rr_list *rrs = find_rrs(srv, cur);
    for (size_t i = 0; rrs != NULL && i < ldns_rr_list_rr_count(rrs); i++) {
      if (ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == LDNS_RR_TYPE_SOA) {
        soa = ldns_rr_list_rr(rrs, i);
        break;
      }
    }
    if (ldns_dname_label_count(cur) == 0) {
      break;
    }
    ldns_rdf *up = ldns_dname_left_chop(cur);
    ldns_rdf_deep_free(cur);
    cur = up;
  }
  ldns_rdf_deep_free(cur);
  return soa;
}

static void add_soa(fakedns_t *srv, ldns_pkt *p, const ldns_rdf *name) {
  const ldns_rr *soa = find_soa(srv, name);
  if (soa != NULL) {
    push_copy(p, LDNS_SECTION_AUTHORITY, soa, NULL);
  }
}

/* Fills the answer of p from the data, following CNAMEs like an
 * authoritative server that holds every zone involved. */
static void answer_from_data(fakedns_t *srv, ldns_pkt *p, const ldns_rdf *qname,
                             uint16_t qtype) {
  const ldns_rdf *cur = qname;
  for (unsigned link = 0;; link++) {
    /* The first owner echoes the query's case, as if compressed into the
     * question; later ones are as scripted. */
    const ldns_rdf *owner = link == 0 ? qname : NULL;
    const ldns_rr_list *rrs = find_rrs(srv, cur);
    if (rrs == NULL || ldns_rr_list_rr_count(rrs) == 0) {
      /* Also after CNAMEs: the chain ends in a name that does not exist
       * (RFC 6604 keeps NXDOMAIN for the last name). */
      ldns_pkt_set_rcode(p, LDNS_RCODE_NXDOMAIN);
      add_soa(srv, p, cur);
      return;
    }
    const ldns_rr *cname = NULL;
    bool found = false;
    for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
      const ldns_rr *rr = ldns_rr_list_rr(rrs, i);
      uint16_t t = (uint16_t)ldns_rr_get_type(rr);
      if (t == qtype || qtype == LDNS_RR_TYPE_ANY) {
        push_copy(p, LDNS_SECTION_ANSWER, rr, owner);
        found = true;
      } else if (t == LDNS_RR_TYPE_CNAME && cname == NULL) {
        cname = rr;
      }
    }
    if (found) {
      return;
    }
    if (cname == NULL) {
      add_soa(srv, p, cur);
      return;
    }
    if (link >= srv->opts.max_cname) {
      /* A scripted loop: stop where a real server would give up, with the
       * chain so far, so the client sees the loop. */
      return;
    }
    push_copy(p, LDNS_SECTION_ANSWER, cname, owner);
    cur = ldns_rr_rdf(cname, 0);
    if (cur == NULL) {
      return;
    }
  }
}

static void sync_counts(ldns_pkt *p) {
  ldns_pkt_set_qdcount(p,
                       (uint16_t)ldns_rr_list_rr_count(ldns_pkt_question(p)));
  ldns_pkt_set_ancount(p, (uint16_t)ldns_rr_list_rr_count(ldns_pkt_answer(p)));
  ldns_pkt_set_nscount(p,
                       (uint16_t)ldns_rr_list_rr_count(ldns_pkt_authority(p)));
  ldns_pkt_set_arcount(p,
                       (uint16_t)ldns_rr_list_rr_count(ldns_pkt_additional(p)));
}

static void empty_list(ldns_rr_list *l, size_t keep) {
  while (ldns_rr_list_rr_count(l) > keep) {
    ldns_rr_free(ldns_rr_list_pop_rr(l));
  }
}

/* A message of len bytes, copied from data unless it is NULL. */
static fakedns__msg_t *msg_new(const uint8_t *data, size_t len) {
  fakedns__msg_t *m = malloc(sizeof(*m) + len);
  if (m == NULL) {
    return NULL;
  }
  m->next = NULL;
  m->alt = false;
  m->close = false;
  m->len = len;
  if (data != NULL) {
    memcpy(m->data, data, len);
  }
  return m;
}

static fakedns__msg_t *msg_from_pkt(const ldns_pkt *p) {
  uint8_t *wire = NULL;
  size_t len = 0;
  if (ldns_pkt2wire(&wire, p, &len) != LDNS_STATUS_OK) {
    return NULL;
  }
  fakedns__msg_t *m = msg_new(wire, len);
  free(wire);
  return m;
}

static size_t wire_size(const ldns_pkt *p) {
  uint8_t *wire = NULL;
  size_t len = 0;
  if (ldns_pkt2wire(&wire, p, &len) != LDNS_STATUS_OK) {
    return 0;
  }
  free(wire);
  return len;
}

/* Trims p to limit bytes the way real servers do: additional, then
 * authority, then answer records from the end; TC says so. The answer cut
 * is found by bisection: encoding is the costly part with big RRsets. */
static void fit_udp(ldns_pkt *p, size_t limit) {
  if (wire_size(p) <= limit) {
    return;
  }
  ldns_pkt_set_tc(p, true);
  empty_list(ldns_pkt_additional(p), 0);
  sync_counts(p);
  if (wire_size(p) <= limit) {
    return;
  }
  empty_list(ldns_pkt_authority(p), 0);
  sync_counts(p);
  ldns_rr_list *an = ldns_pkt_answer(p);
  size_t n = ldns_rr_list_rr_count(an);
  ldns_rr **rrs = malloc((n ? n : 1) * sizeof(*rrs));
  if (rrs == NULL) {
    empty_list(an, 0);
    sync_counts(p);
    return;
  }
  for (size_t i = n; i > 0; i--) {
    rrs[i - 1] = ldns_rr_list_pop_rr(an);
  }
  /* Header and question alone always fit (a question is at most 259
   * bytes): lo answers fit, hi answers do not. */
  size_t lo = 0, hi = n;
  while (hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    for (size_t i = 0; i < mid; i++) {
      ldns_rr_list_push_rr(an, rrs[i]);
    }
    sync_counts(p);
    bool fits = wire_size(p) <= limit;
    while (ldns_rr_list_rr_count(an) > 0) {
      ldns_rr_list_pop_rr(an);
    }
    if (fits) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (i < lo && ldns_rr_list_push_rr(an, rrs[i])) {
      continue;
    }
    ldns_rr_free(rrs[i]);
  }
  free(rrs);
  sync_counts(p);
}

static void append(fakedns__msg_t ***tail, fakedns__msg_t *m) {
  if (m != NULL) {
    **tail = m;
    *tail = &m->next;
  }
}

/* Random bytes, or the scripted ones, with the query's ID when asked. */
static fakedns__msg_t *garbage_msg(fakedns_t *srv, const fakedns__beh_t *b,
                                   uint16_t id) {
  fakedns__msg_t *m;
  if (b->garbage != NULL) {
    m = msg_new(b->garbage, b->pub.garbage_len);
  } else {
    size_t len = b->pub.garbage_len;
    if (len == 0) {
      len = 1 + (size_t)(fakedns__random(srv) % 512);
    }
    if (len > 65535) {
      len = 65535;
    }
    m = msg_new(NULL, len);
    for (size_t i = 0; m != NULL && i < len; i++) {
      m->data[i] = (uint8_t)fakedns__random(srv);
    }
  }
  if (m != NULL && b->pub.garbage_keep_id && m->len >= 2) {
    m->data[0] = (uint8_t)(id >> 8);
    m->data[1] = (uint8_t)id;
  }
  return m;
}

/* A header-only FORMERR for a message that did not parse. */
static fakedns__msg_t *formerr_raw(const uint8_t *q) {
  uint8_t h[12] = {0};
  h[0] = q[0];
  h[1] = q[1];
  h[2] = (uint8_t)(0x80 | (q[2] & 0x79)); /* QR, opcode and RD kept */
  h[3] = LDNS_RCODE_FORMERR;
  return msg_new(h, sizeof(h));
}

/* The spoofs' base: the reply itself, or the reply with the scripted spoof
 * record as its whole answer. */
static ldns_pkt *spoof_base(const ldns_pkt *reply, const fakedns__beh_t *b,
                            const ldns_rdf *qname) {
  ldns_pkt *s = ldns_pkt_clone(reply);
  if (s == NULL || b->spoof == NULL) {
    return s;
  }
  empty_list(ldns_pkt_answer(s), 0);
  empty_list(ldns_pkt_authority(s), 0);
  empty_list(ldns_pkt_additional(s), 0);
  ldns_pkt_set_rcode(s, LDNS_RCODE_NOERROR);
  ldns_pkt_set_tc(s, false);
  push_copy(s, LDNS_SECTION_ANSWER, b->spoof, qname);
  sync_counts(s);
  return s;
}

static void add_spoofs(fakedns_t *srv, const ldns_pkt *reply,
                       const fakedns__beh_t *b, const ldns_rdf *qname,
                       fakedns_transport_t transport, fakedns__msg_t ***tail) {
  const fakedns_behaviour_t *pb = &b->pub;
  if (!((pb->wrong_port && transport == FAKEDNS_UDP) || pb->wrong_id ||
        pb->wrong_question || pb->lower_question)) {
    return;
  }
  ldns_pkt *s = spoof_base(reply, b, qname);
  if (s == NULL) {
    return;
  }
  if (pb->wrong_port && transport == FAKEDNS_UDP) {
    fakedns__msg_t *m = msg_from_pkt(s);
    if (m != NULL) {
      m->alt = true;
    }
    append(tail, m);
  }
  if (pb->wrong_id) {
    uint16_t id = ldns_pkt_id(s);
    ldns_pkt_set_id(s, (uint16_t)(id ^ (1 + fakedns__random(srv) % 0xffff)));
    append(tail, msg_from_pkt(s));
    ldns_pkt_set_id(s, id);
  }
  if (pb->lower_question && ldns_rr_list_rr_count(ldns_pkt_question(s)) == 1) {
    /* Before wrong_question, which changes the name for good. */
    ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(s), 0);
    ldns_rdf *saved = ldns_rdf_clone(ldns_rr_owner(q));
    ldns_dname2canonical(ldns_rr_owner(q));
    append(tail, msg_from_pkt(s));
    if (saved != NULL) {
      ldns_rdf_deep_free(ldns_rr_owner(q));
      ldns_rr_set_owner(q, saved);
    }
  }
  if (pb->wrong_question && ldns_rr_list_rr_count(ldns_pkt_question(s)) == 1) {
    ldns_rr *q = ldns_rr_list_rr(ldns_pkt_question(s), 0);
    ldns_rdf *other = ldns_dname_new_frm_str("x--spoof");
    if (other != NULL &&
        ldns_dname_cat(other, ldns_rr_owner(q)) == LDNS_STATUS_OK) {
      ldns_rdf_deep_free(ldns_rr_owner(q));
      ldns_rr_set_owner(q, other);
      other = NULL;
    } else {
      /* The name was too long for another label: change the type. */
      ldns_rr_set_type(q, ldns_rr_get_type(q) == LDNS_RR_TYPE_TXT
                              ? LDNS_RR_TYPE_NULL
                              : LDNS_RR_TYPE_TXT);
    }
    ldns_rdf_deep_free(other);
    append(tail, msg_from_pkt(s));
  }
  ldns_pkt_free(s);
}

/* The behaviour that governs key: its own, its name's, or the default. */
static fakedns__beh_t *governing(fakedns_t *srv, const fakedns__key_t *key) {
  fakedns__slot_t *s = fakedns__slot(srv, key, false);
  if (s != NULL && s->beh != NULL) {
    return s->beh;
  }
  fakedns__key_t any = *key;
  any.type = 0;
  s = fakedns__slot(srv, &any, false);
  if (s != NULL && s->beh != NULL) {
    return s->beh;
  }
  return srv->dflt;
}

static void count(fakedns_t *srv, const fakedns__key_t *key, const ldns_pkt *q,
                  fakedns_transport_t transport, uint64_t now_us) {
  bool edns = ldns_pkt_edns(q);
  if (edns) {
    srv->totals.edns++;
  }
  fakedns__slot_t *s = fakedns__slot(srv, key, true);
  if (s != NULL) {
    fakedns_stats_t *st = &s->stats;
    if (transport == FAKEDNS_UDP) {
      st->udp++;
    } else {
      st->tcp++;
    }
    if (edns) {
      st->edns++;
    }
    if (st->first_us == 0) {
      st->first_us = now_us;
    }
    st->last_us = now_us;
    st->last_edns_size = edns ? ldns_pkt_edns_udp_size(q) : 0;
    st->last_rd = ldns_pkt_rd(q);
  }
  pthread_cond_broadcast(&srv->arrived);
}

void fakedns__plan(fakedns_t *srv, const uint8_t *msg, size_t len,
                   fakedns_transport_t transport, uint64_t now_us,
                   fakedns__plan_t *plan) {
  memset(plan, 0, sizeof(*plan));
  fakedns__msg_t **tail = &plan->msgs;
  if (transport == FAKEDNS_UDP) {
    srv->totals.udp++;
  } else {
    srv->totals.tcp++;
  }
  ldns_pkt *q = NULL;
  ldns_pkt *r = NULL;
  if (ldns_wire2pkt(&q, msg, len) != LDNS_STATUS_OK) {
    srv->totals.malformed++;
    /* Answer what has a header and is not itself a reply, like a server
     * would; shorter junk is dropped. */
    if (len >= 12 && (msg[2] & 0x80) == 0) {
      append(&tail, formerr_raw(msg));
    }
    goto done;
  }
  if (ldns_pkt_qr(q)) {
    srv->totals.malformed++;
    goto done;
  }
  r = ldns_pkt_new();
  if (r == NULL) {
    goto done;
  }
  ldns_pkt_set_id(r, ldns_pkt_id(q));
  ldns_pkt_set_qr(r, true);
  ldns_pkt_set_opcode(r, ldns_pkt_get_opcode(q));
  ldns_pkt_set_rd(r, ldns_pkt_rd(q));
  ldns_pkt_set_cd(r, ldns_pkt_cd(q));
  if (ldns_pkt_qdcount(q) != 1 ||
      ldns_rr_list_rr_count(ldns_pkt_question(q)) != 1) {
    srv->totals.malformed++;
    ldns_pkt_set_rcode(r, LDNS_RCODE_FORMERR);
    append(&tail, msg_from_pkt(r));
    goto done;
  }
  const ldns_rr *question = ldns_rr_list_rr(ldns_pkt_question(q), 0);
  const ldns_rdf *qname = ldns_rr_owner(question);
  uint16_t qtype = (uint16_t)ldns_rr_get_type(question);
  fakedns__key_t key;
  fakedns__key_from_rdf(&key, qname, qtype);
  count(srv, &key, q, transport, now_us);
  plan->arrived = true;
  plan->arrived_key = key;

  /* The question is copied as received: 0x20 case included. */
  push_copy(r, LDNS_SECTION_QUESTION, question, NULL);
  ldns_pkt_set_aa(r, true);
  ldns_pkt_set_ra(r, true);

  fakedns__beh_t *b = governing(srv, &key);
  fakedns__beh_t normal;
  if (b == NULL) {
    memset(&normal, 0, sizeof(normal));
    fakedns_behaviour_init(&normal.pub);
    b = &normal;
  }
  const fakedns_behaviour_t *pb = &b->pub;
  b->seen++;
  if (pb->black_hole || b->seen <= pb->drop_first) {
    goto done;
  }

  bool edns_in = ldns_pkt_edns(q);
  if (ldns_pkt_get_opcode(q) != LDNS_PACKET_QUERY) {
    ldns_pkt_set_rcode(r, LDNS_RCODE_NOTIMPL);
  } else if (pb->edns == FAKEDNS_EDNS_FORMERR && edns_in) {
    ldns_pkt_set_rcode(r, LDNS_RCODE_FORMERR);
  } else if (pb->rcode != FAKEDNS_RCODE_DATA) {
    ldns_pkt_set_rcode(r, (uint8_t)pb->rcode);
    if (pb->rcode == LDNS_RCODE_NXDOMAIN) {
      add_soa(srv, r, qname);
    }
  } else {
    answer_from_data(srv, r, qname, qtype);
  }

  bool edns_out = edns_in && pb->edns == FAKEDNS_EDNS_ECHO;
  if (edns_out) {
    ldns_pkt_set_edns_udp_size(r, FK_EDNS_SIZE);
    ldns_pkt_set_edns_do(r, ldns_pkt_edns_do(q));
  }
  sync_counts(r);
  if (transport == FAKEDNS_UDP) {
    if (pb->truncate) {
      ldns_pkt_set_tc(r, true);
      empty_list(ldns_pkt_answer(r), pb->tc_keep);
      empty_list(ldns_pkt_authority(r), 0);
      empty_list(ldns_pkt_additional(r), 0);
      sync_counts(r);
    }
    size_t limit = FK_PLAIN_SIZE;
    if (edns_out) {
      size_t asked = ldns_pkt_edns_udp_size(q);
      limit = asked < FK_PLAIN_SIZE  ? FK_PLAIN_SIZE
              : asked > FK_EDNS_SIZE ? FK_EDNS_SIZE
                                     : asked;
    }
    fit_udp(r, limit);
  }

  if (transport == FAKEDNS_TCP && pb->tcp_close) {
    fakedns__msg_t *m = msg_new(NULL, 0);
    if (m != NULL) {
      m->close = true;
    }
    append(&tail, m);
    goto timing;
  }
  if (pb->garbage != FAKEDNS_GARBAGE_NONE) {
    append(&tail, garbage_msg(srv, b, ldns_pkt_id(q)));
    if (pb->garbage == FAKEDNS_GARBAGE_INSTEAD) {
      goto timing;
    }
  }
  add_spoofs(srv, r, b, qname, transport, &tail);
  bool spoofed = (pb->wrong_port && transport == FAKEDNS_UDP) || pb->wrong_id ||
                 pb->wrong_question || pb->lower_question;
  if (!(pb->spoof_only && spoofed)) {
    append(&tail, msg_from_pkt(r));
  }

timing:
  plan->delay_ms = pb->delay_ms;
  if (pb->hold_until != 0) {
    fakedns__key_t peer = key;
    peer.type = pb->hold_until;
    fakedns__slot_t *ps = fakedns__slot(srv, &peer, false);
    if (ps == NULL || ps->stats.udp + ps->stats.tcp == 0) {
      plan->hold = true;
      plan->hold_key = peer;
    }
  }
done:
  ldns_pkt_free(q);
  ldns_pkt_free(r);
}

void fakedns__msgs_free(fakedns__msg_t *m) {
  while (m != NULL) {
    fakedns__msg_t *next = m->next;
    free(m);
    m = next;
  }
}
