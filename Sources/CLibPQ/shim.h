#ifndef SMS_RETRY_CLIBPQ_SHIM_H
#define SMS_RETRY_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
