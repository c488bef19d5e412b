#ifndef SMS_RETRY_CCURL_SHIM_H
#define SMS_RETRY_CCURL_SHIM_H
#include <curl/curl.h>

/* curl_easy_setopt, curl_easy_getinfo and curl_multi_setopt are variadic, which Swift cannot
   call: one typed wrapper per argument type. */
static inline CURLcode sr_easy_setopt_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sr_easy_setopt_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sr_easy_setopt_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sr_easy_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sr_easy_setopt_write(CURL *h, CURLoption o, curl_write_callback v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode sr_easy_setopt_read(CURL *h, curl_read_callback v) { return curl_easy_setopt(h, CURLOPT_READFUNCTION, v); }
static inline CURLcode sr_easy_setopt_seek(CURL *h, curl_seek_callback v) { return curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, v); }
static inline CURLcode sr_easy_getinfo_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLMcode sr_multi_setopt_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

/* CURLAUTH_BASIC is a macro with a cast that Swift does not import. */
static const long SR_CURLAUTH_BASIC = (long)CURLAUTH_BASIC;
/* "CURL_SEEKFUNC_CANTSEEK: tell libcurl seeking can't be done, so libcurl might try other
   means instead" — for a read-callback body there are none: the transfer fails. */
static const int SR_CURL_SEEKFUNC_CANTSEEK = CURL_SEEKFUNC_CANTSEEK;
#endif
