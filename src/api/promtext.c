/* promtext — see promtext.h. */
#include "api/promtext.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(struct promtext *p, size_t more)
{
	if (p->failed)
		return false;
	if (p->len + more + 1 <= p->cap)
		return true;
	size_t cap = p->cap ? p->cap : 4096;
	while (cap < p->len + more + 1)
		cap *= 2;
	char *nb = realloc(p->buf, cap);
	if (nb == NULL) {
		p->failed = true;
		return false;
	}
	p->buf = nb;
	p->cap = cap;
	return true;
}

static void put(struct promtext *p, const char *s, size_t n)
{
	if (!grow(p, n))
		return;
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	p->buf[p->len] = '\0';
}

static void puts_(struct promtext *p, const char *s)
{
	put(p, s, strlen(s));
}

static void putf(struct promtext *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct promtext *p, const char *fmt, ...)
{
	char small[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		p->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		put(p, small, (size_t)n);
		return;
	}
	if (!grow(p, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(p->buf + p->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	p->len += (size_t)n;
}

/* HELP text escapes backslash and newline; label values also '"'. */
static void escaped(struct promtext *p, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(p, "\\\\");
		else if (*s == '\n')
			puts_(p, "\\n");
		else if (quote && *s == '"')
			puts_(p, "\\\"");
		else
			put(p, s, 1);
	}
}

void prom_family(struct promtext *p, const char *name, const char *type, const char *help)
{
	putf(p, "# HELP %s ", name);
	escaped(p, help, false);
	putf(p, "\n# TYPE %s %s\n", name, type);
}

/* name{labels[,le="x"]} */
static void series(struct promtext *p, const char *name, const char *suffix, prom_labels labels,
		   const char *le)
{
	bool any = false;

	puts_(p, name);
	puts_(p, suffix);
	for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
		put(p, any ? "," : "{", 1);
		puts_(p, labels[i]);
		puts_(p, "=\"");
		escaped(p, labels[i + 1], true);
		put(p, "\"", 1);
		any = true;
	}
	if (le) {
		puts_(p, any ? ",le=\"" : "{le=\"");
		puts_(p, le);
		put(p, "\"", 1);
		any = true;
	}
	if (any)
		put(p, "}", 1);
}

/* Go's float syntax, which Prometheus parses: shortest round trip is not
 * needed, 15 significant digits are plenty for counters and seconds. */
static void value(struct promtext *p, double v)
{
	if (isnan(v))
		puts_(p, " NaN\n");
	else if (isinf(v))
		puts_(p, v > 0 ? " +Inf\n" : " -Inf\n");
	else
		putf(p, " %.15g\n", v);
}

void prom_sample(struct promtext *p, const char *name, prom_labels labels, double v)
{
	series(p, name, "", labels, NULL);
	value(p, v);
}

void prom_sample_u(struct promtext *p, const char *name, prom_labels labels, uint64_t v)
{
	series(p, name, "", labels, NULL);
	putf(p, " %" PRIu64 "\n", v);
}

void prom_histogram(struct promtext *p, const char *name, prom_labels labels,
		    const double *bounds, size_t n_bounds, const uint64_t *buckets, double sum)
{
	uint64_t cum = 0;
	char le[32];

	for (size_t i = 0; i <= n_bounds; i++) {
		cum += buckets[i];
		if (i < n_bounds)
			snprintf(le, sizeof(le), "%.15g", bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		series(p, name, "_bucket", labels, le);
		putf(p, " %" PRIu64 "\n", cum);
	}
	series(p, name, "_sum", labels, NULL);
	value(p, sum);
	series(p, name, "_count", labels, NULL);
	putf(p, " %" PRIu64 "\n", cum);
}

char *prom_take(struct promtext *p, size_t *len)
{
	char *out = p->failed ? NULL : p->buf;

	if (out == NULL) {
		free(p->buf);
		out = p->failed ? NULL : strdup("");
	}
	*len = out ? p->len : 0;
	*p = (struct promtext){ 0 };
	return out;
}

void prom_free(struct promtext *p)
{
	free(p->buf);
	*p = (struct promtext){ 0 };
}
