/* Internals shared by the fake server's files: fakedns.c (sockets, thread,
 * timers, counters), fakedns_zone.c (data, behaviours, building replies)
 * and fakedns_load.c (zone text and directives). */
#ifndef DT_FAKEDNS_INT_H
#define DT_FAKEDNS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <ldns/ldns.h>

/* uthash with the C library's allocator (see fakedns.h on why not
 * dialtone's), and without exit() when memory runs out. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

#include "fakedns.h"

/* A name in canonical (lower-case) wire form plus a type: the key of every
 * table. Always memset before filling, the whole struct is hashed. */
typedef struct {
  uint16_t type;
  uint8_t len;
  uint8_t wire[255];
} fakedns__key_t;

/* The records of one owner name (key.type is 0). */
typedef struct {
  fakedns__key_t key;
  ldns_rr_list *rrs;
  UT_hash_handle hh;
} fakedns__name_t;

/* A behaviour with private copies of everything its pointers refer to. */
typedef struct {
  fakedns_behaviour_t pub;
  uint8_t *garbage;
  char *spoof_text;
  ldns_rr *spoof;
  unsigned seen; /* queries since it was set, for drop_first */
} fakedns__beh_t;

/* Per (name, type): counters, and the behaviour if one is set. A slot is
 * never removed while the server exists, so counters survive
 * fakedns_clear(). */
typedef struct {
  fakedns__key_t key;
  fakedns_stats_t stats;
  fakedns__beh_t *beh;
  UT_hash_handle hh;
} fakedns__slot_t;

/* One message to send for a query. */
typedef struct fakedns__msg {
  struct fakedns__msg *next;
  bool alt;   /* UDP: from the second socket (another source port) */
  bool close; /* TCP: close the connection instead of sending */
  size_t len;
  uint8_t data[];
} fakedns__msg_t;

/* What to do about one received message. */
typedef struct {
  fakedns__msg_t *msgs; /* in order; NULL sends nothing */
  unsigned delay_ms;
  bool hold; /* wait for a query of hold_key first */
  fakedns__key_t hold_key;
  bool arrived; /* a query of arrived_key was counted */
  fakedns__key_t arrived_key;
} fakedns__plan_t;

/* TCP connection, owned by the server thread. */
typedef struct fakedns__conn {
  struct fakedns__conn *next;
  int fd;
  uint64_t id;
  size_t in_len;
  uint8_t *out;
  size_t out_len, out_off, out_cap;
  unsigned pending; /* replies scheduled, not yet queued in out */
  bool eof;         /* peer closed its side: close once all is sent */
  bool dead;        /* close now */
  uint8_t in[2 + 65535];
} fakedns__conn_t;

/* A reply waiting for its time (or for its hold to be released). */
typedef struct fakedns__pending {
  struct fakedns__pending *next;
  uint64_t due_us;
  unsigned delay_ms;
  bool held;
  fakedns__key_t hold_key;
  fakedns_transport_t transport;
  int fam; /* UDP: 0 IPv4, 1 IPv6 */
  struct sockaddr_storage peer;
  socklen_t peer_len;
  uint64_t conn_id; /* TCP */
  fakedns__msg_t *msgs;
} fakedns__pending_t;

struct fakedns {
  fakedns_opts_t opts;
  uint16_t port;
  bool has_v6;
  /* Index 0 is IPv4, 1 is IPv6; -1 when absent. */
  int udp[2], tcp[2], alt[2];
  int wake[2]; /* self-pipe that interrupts poll() for fakedns_stop() */

  pthread_mutex_t lock;
  pthread_cond_t arrived; /* signalled whenever a query is counted */
  /* Guarded by lock. */
  bool running;
  bool stopping;
  fakedns__name_t *names;
  fakedns__slot_t *slots;
  fakedns__beh_t *dflt;
  fakedns_totals_t totals;
  uint64_t rng;
  pthread_t thread;

  /* Owned by the server thread. */
  fakedns__conn_t *conns;
  unsigned nconns;
  uint64_t next_conn_id;
  fakedns__pending_t *pending;
  uint64_t accept_pause_until; /* listeners rest until then after EMFILE */
};

/* Fills key from a dname, lower-cased. */
void fakedns__key_from_rdf(fakedns__key_t *key, const ldns_rdf *dname,
                           uint16_t type);
/* Fills key from a name in text; false when it does not parse. */
bool fakedns__key_from_str(fakedns__key_t *key, const char *name,
                           uint16_t type);
/* The slot of key, created when create is set; NULL when absent or out of
 * memory. Lock held. */
fakedns__slot_t *fakedns__slot(fakedns_t *srv, const fakedns__key_t *key,
                               bool create);
/* Turns a received message into messages to send, counting it. Lock held. */
void fakedns__plan(fakedns_t *srv, const uint8_t *msg, size_t len,
                   fakedns_transport_t transport, uint64_t now_us,
                   fakedns__plan_t *plan);
void fakedns__msgs_free(fakedns__msg_t *m);
/* Frees a behaviour and its copies; NULL is ignored. */
void fakedns__beh_free(fakedns__beh_t *b);
/* Frees every record and behaviour. Lock held. */
void fakedns__zone_clear(fakedns_t *srv);
/* Frees the slots too: only when the server goes away. */
void fakedns__zone_free(fakedns_t *srv);
/* The behaviour set for key (NULL: the default), or one from
 * fakedns_behaviour_init(), for the loader to amend. The pointers inside
 * are borrowed from the server until that behaviour next changes. */
void fakedns__get_behaviour(fakedns_t *srv, const fakedns__key_t *key,
                            fakedns_behaviour_t *out);
uint64_t fakedns__random(fakedns_t *srv);

#endif
