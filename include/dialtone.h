/**
 * @file dialtone.h
 * @brief The only header dialtone users include.
 *
 * dialtone turns a host name into a ready, tuned, reusable connection: a
 * TTL-honouring DNS cache feeds a Happy Eyeballs dialer, which applies
 * socket options, keeps idle connection pools and offers buffered,
 * length-prefixed I/O. See dialtone(3).
 */
#ifndef DIALTONE_H
#define DIALTONE_H

#include "dialtone/common.h"
#include "dialtone/conn.h"
#include "dialtone/name.h"
#include "dialtone/resolver.h"
#include "dialtone/sockopt.h"
#include "dialtone/dial.h"
#include "dialtone/listen.h"
#include "dialtone/pool.h"
#include "dialtone/loop.h"

#endif
