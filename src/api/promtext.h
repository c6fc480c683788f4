/*
 * promtext — the Prometheus text exposition format (version 0.0.4), as
 * GET /metrics answers it.  Pure: families and samples in, text out.
 *
 * The format, as this writer produces it:
 *   # HELP name text            (once per family, before its samples;
 *   # TYPE name counter|gauge|histogram      backslash and newline escaped)
 *   name{label="value",…} 12    (label values escape \ " and newline)
 *   name_bucket{…,le="0.5"} 3   (histograms: cumulative buckets, "+Inf"
 *   name_sum{…} 1.25             last and equal to _count)
 *   name_count{…} 3
 * Label names and metric names are the caller's constants; values are
 * anything (VM names, routes) and are escaped here.
 *
 * Out of memory is sticky: every later call does nothing and prom_take
 * returns NULL.
 */
#ifndef HC_API_PROMTEXT_H
#define HC_API_PROMTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct promtext {
	char *buf;
	size_t len, cap;
	bool failed;
};

/* Labels are pairs of name and value, then NULL: (const char *[]){ "vm",
 * id, "state", "running", NULL }; NULL alone (or a NULL array) for none. */
typedef const char *const *prom_labels;

void prom_family(struct promtext *p, const char *name, const char *type, const char *help);
void prom_sample(struct promtext *p, const char *name, prom_labels labels, double value);
void prom_sample_u(struct promtext *p, const char *name, prom_labels labels, uint64_t value);
/* buckets[i]: observations in bucket i alone (bounds[i-1] < d <= bounds[i]),
 * i = 0..n_bounds (the last one above every bound); written cumulative. */
void prom_histogram(struct promtext *p, const char *name, prom_labels labels,
		    const double *bounds, size_t n_bounds, const uint64_t *buckets, double sum);

/* The text (malloc'd, NUL-terminated, *len without the NUL) and a fresh
 * writer; NULL when memory ran out on the way. */
char *prom_take(struct promtext *p, size_t *len);
void prom_free(struct promtext *p);

#endif
