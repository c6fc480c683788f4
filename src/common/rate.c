/* rate — see rate.h. */
#include "common/rate.h"

#include "common/validate.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	uint64_t mult;
} units[] = {
	{ "tbit", UINT64_C(1000000000000) }, { "t", UINT64_C(1000000000000) },
	{ "gbit", UINT64_C(1000000000) },    { "g", UINT64_C(1000000000) },
	{ "mbit", UINT64_C(1000000) },       { "m", UINT64_C(1000000) },
	{ "kbit", UINT64_C(1000) },          { "k", UINT64_C(1000) },
	{ "bit", 1 },                        { "", 1 },
};

bool rate_parse(const char *s, uint64_t *bps)
{
	uint64_t v = 0;
	size_t i = 0;

	if (s == NULL || s[0] < '0' || s[0] > '9')
		return false;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (v > RATE_MAX)
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (strcasecmp(s + i, units[u].name) != 0)
			continue;
		if (v == 0 || v > RATE_MAX / units[u].mult || v * units[u].mult < RATE_MIN)
			return false;
		*bps = v * units[u].mult;
		return true;
	}
	return false;
}

void rate_format(uint64_t bps, char *buf, size_t len)
{
	/* Every other entry of the table is the long name of a unit. */
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u += 2)
		if (bps >= units[u].mult && bps % units[u].mult == 0) {
			snprintf(buf, len, "%llu%s", (unsigned long long)(bps / units[u].mult),
				 units[u].name);
			return;
		}
	snprintf(buf, len, "%llubit", (unsigned long long)bps);
}

static void side_format(const struct rate_limit *l, char *buf, size_t len)
{
	char rate[32];

	if (l->rate == 0) {
		snprintf(buf, len, "none");
		return;
	}
	rate_format(l->rate, rate, sizeof(rate));
	if (l->burst == 0)
		snprintf(buf, len, "%s", rate);
	else if (l->burst % (1 << 20) == 0)
		snprintf(buf, len, "%s:%llum", rate, (unsigned long long)(l->burst >> 20));
	else if (l->burst % (1 << 10) == 0)
		snprintf(buf, len, "%s:%lluk", rate, (unsigned long long)(l->burst >> 10));
	else
		snprintf(buf, len, "%s:%llu", rate, (unsigned long long)l->burst);
}

void rate_spec_format(const struct nic_limit *l, char *buf, size_t len)
{
	char in[80], out[80];

	side_format(&l->in, in, sizeof(in));
	side_format(&l->out, out, sizeof(out));
	if (strcmp(in, out) == 0)
		snprintf(buf, len, "%s", in);
	else
		snprintf(buf, len, "%s/%s", in, out);
}

bool rate_limit_valid(const struct rate_limit *l)
{
	if (l->rate == 0)
		return l->burst == 0;
	return l->rate >= RATE_MIN && l->rate <= RATE_MAX &&
	       (l->burst == 0 || (l->burst >= BURST_MIN && l->burst <= BURST_MAX));
}

bool rate_side_parse(const char *s, struct rate_limit *out)
{
	char rate[32];
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	*out = (struct rate_limit){ 0 };
	if (strcmp(s, "none") == 0)
		return true;
	if (n == 0 || n >= sizeof(rate))
		return false;
	memcpy(rate, s, n);
	rate[n] = '\0';
	if (!rate_parse(rate, &out->rate))
		return false;
	if (colon && !size_parse(colon + 1, &out->burst))
		return false;
	return rate_limit_valid(out);
}

bool rate_spec_parse(const char *s, struct nic_limit *out, char *err, size_t len)
{
	char in[64];
	const char *slash = strchr(s, '/');

	*out = (struct nic_limit){ 0 };
	if (slash == NULL) {
		if (!rate_side_parse(s, &out->in))
			goto bad;
		out->out = out->in;
		return true;
	}
	if ((size_t)(slash - s) >= sizeof(in) || strchr(slash + 1, '/'))
		goto bad;
	memcpy(in, s, (size_t)(slash - s));
	in[slash - s] = '\0';
	if (rate_side_parse(in, &out->in) && rate_side_parse(slash + 1, &out->out))
		return true;
bad:
	snprintf(err, len, "'%s' is not a rate: RATE[:BURST] or IN/OUT, RATE like 100mbit"
		 " (%llukbit..%llugbit), BURST bytes like 64k (%lluk..%llum), or none", s,
		 (unsigned long long)(RATE_MIN / 1000), (unsigned long long)(RATE_MAX / 1000000000),
		 (unsigned long long)(BURST_MIN >> 10), (unsigned long long)(BURST_MAX >> 20));
	return false;
}

static uint64_t default_burst(uint64_t rate)
{
	uint64_t b = rate / 8 / 100;   /* 10 ms */

	if (b < (UINT64_C(16) << 10))
		b = UINT64_C(16) << 10;
	return b > BURST_MAX ? BURST_MAX : b;
}

uint64_t rate_burst(const struct rate_limit *l)
{
	return l->burst ? l->burst : default_burst(l->rate);
}

uint64_t rate_queue(const struct rate_limit *l)
{
	uint64_t q = rate_burst(l) + l->rate / 8 / 20;   /* + 50 ms */

	return q > UINT32_MAX ? UINT32_MAX : q;
}

struct rate_limit rate_limit_min(struct rate_limit a, struct rate_limit b)
{
	struct rate_limit lo = a, hi = b;

	if (a.rate == 0)
		return b;
	if (b.rate == 0)
		return a;
	if (b.rate < a.rate) {
		lo = b;
		hi = a;
	}
	/* The lower rate with its own burst, else the other's when modest. */
	if (lo.burst == 0 && hi.burst != 0 && hi.burst <= default_burst(lo.rate))
		lo.burst = hi.burst;
	return lo;
}

bool rate_limit_equal(const struct rate_limit *a, const struct rate_limit *b)
{
	return a->rate == b->rate && rate_burst(a) == rate_burst(b);
}
