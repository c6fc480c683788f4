/* bandwidth — see bandwidth.h. */
#include "agent/bandwidth.h"

#include "common/ids.h"
#include "common/log.h"
#include "common/worker.h"
#include "net/shaping.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const limit_source_names[] = { "none", "nic", "network", "cap", "throttle" };

struct bandwidth {
	struct store *st;
	const struct config *cfg;
	struct worker_pool *workers;
	struct shaper *shaper;
	uint64_t throttle;
	/* What the last converge applied: a refresh compares against it. */
	struct shape_want *applied;
	size_t n_applied;
	bool applied_ok;
	/* An application runs on a worker, one at a time (it owns the
	 * shaper meanwhile); a converge asked for during it is run when it
	 * ends, thorough if any of those asked was. */
	bool busy, again, again_thorough;
};

static struct rate_limit capped(struct rate_limit l, uint64_t max, enum limit_source *why,
				enum limit_source because)
{
	if (max == 0 || (l.rate != 0 && l.rate <= max))
		return l;
	*why = because;
	return rate_limit_min(l, (struct rate_limit){ max, 0 });
}

static struct rate_limit effective_dir(const struct rate_limit *own, const struct rate_limit *net,
				       uint64_t cap, uint64_t throttle, bool throttled,
				       enum limit_source *why)
{
	struct rate_limit l = { 0 };

	*why = LIMIT_NONE;
	if (own->rate) {
		l = *own;
		*why = LIMIT_NIC;
	} else if (net->rate) {
		l = *net;
		*why = LIMIT_NETWORK;
	}
	l = capped(l, cap, why, LIMIT_CAP);
	if (throttled)
		l = capped(l, throttle, why, LIMIT_THROTTLE);
	return l;
}

struct nic_limit bandwidth_effective(const struct nic_shaping *s, uint64_t throttle,
				     enum limit_source why[2])
{
	enum limit_source w[2];
	struct nic_limit l = {
		effective_dir(&s->own.in, &s->net.in, s->cap, throttle, s->throttled, &w[0]),
		effective_dir(&s->own.out, &s->net.out, s->cap, throttle, s->throttled, &w[1]),
	};

	if (why) {
		why[0] = w[0];
		why[1] = w[1];
	}
	return l;
}

bool bandwidth_throttle_rate(const struct config *cfg, uint64_t *bps)
{
	return cfg->quota_throttle_rate && rate_parse(cfg->quota_throttle_rate, bps);
}

struct bandwidth *bandwidth_new(struct store *st, const struct config *cfg,
				struct worker_pool *workers)
{
	struct bandwidth *b = calloc(1, sizeof(*b));
	char *err = NULL;

	if (b == NULL)
		return NULL;
	b->st = st;
	b->cfg = cfg;
	b->workers = workers;
	if (!bandwidth_throttle_rate(cfg, &b->throttle)) {
		log_err("config: quota_throttle_rate '%s' is not a rate (e.g. 1mbit)",
			cfg->quota_throttle_rate ? cfg->quota_throttle_rate : "");
		free(b);
		return NULL;
	}
	if ((b->shaper = shaper_new(&err)) == NULL) {
		log_err("shaping: %s", err ? err : "out of memory");
		free(err);
		free(b);
		return NULL;
	}
	return b;
}

void bandwidth_free(struct bandwidth *b)
{
	if (b == NULL)
		return;
	shaper_free(b->shaper);
	free(b->applied);
	free(b);
}

/* What every NIC placed here should get now. */
static int wanted(struct bandwidth *b, struct shape_want **out, size_t *n)
{
	struct nic_shaping *rows = NULL;
	size_t n_rows = 0;
	char month[MONTH_STRLEN + 1];

	usage_month(time(NULL), month);
	if (store_nic_shaping_list(b->st, b->cfg->host_name, 0, month, &rows, &n_rows) != STORE_OK)
		return -1;
	*out = calloc(n_rows + 1, sizeof(**out));
	if (*out == NULL) {
		free(rows);
		return -1;
	}
	for (size_t i = 0; i < n_rows; i++) {
		struct nic_limit l = bandwidth_effective(&rows[i], b->throttle, NULL);
		(*out)[i] = (struct shape_want){ .nic = rows[i].nic, .in = l.in, .out = l.out };
	}
	*n = n_rows;
	free(rows);
	return 0;
}

/* One application of the wanted limits: the qdisc and link work (at
 * 10,000 NICs a dump of each, most of a second) runs on a worker. */
struct apply_job {
	struct bandwidth *b;
	struct shape_want *want;
	size_t n;
	bool thorough;
	int rc;
	struct shape_report r;
	char *err;
};

static void apply_work(void *arg)
{
	struct apply_job *j = arg;

	j->rc = shaper_converge(j->b->shaper, j->want, j->n, j->thorough, &j->r, &j->err);
}

static void apply_done(void *arg, bool ran)
{
	struct apply_job *j = arg;
	struct bandwidth *b = j->b;

	b->busy = false;
	if (ran) {
		if (j->r.changed)
			log_info("shaping: %zu changes on %zu NICs here%s", j->r.changed, j->r.links,
				 j->thorough ? " (resync)" : "");
		if (j->r.strays)
			log_info("shaping: removed %zu ifbs no NIC here needs", j->r.strays);
		if (j->rc < 0)
			log_warn("shaping: %zu NICs failed: %s", j->r.failed, j->err ? j->err : "failed");
		free(b->applied);
		b->applied = j->want;
		b->n_applied = j->n;
		/* A failure is tried again by the meter's next refresh. */
		b->applied_ok = j->rc == 0;
		j->want = NULL;
	}
	free(j->want);
	free(j->err);
	free(j);
	if (ran && b->again) {
		bool thorough = b->again_thorough;
		b->again = b->again_thorough = false;
		bandwidth_converge(b, thorough, false);
	}
}

/* Takes want.  Returns -1 when the application failed here and now. */
static int apply(struct bandwidth *b, struct shape_want *want, size_t n, bool thorough, bool inline_)
{
	struct apply_job *j = calloc(1, sizeof(*j));
	int rc;

	if (j == NULL) {
		free(want);
		return -1;
	}
	*j = (struct apply_job){ .b = b, .want = want, .n = n, .thorough = thorough };
	b->busy = true;
	if (!inline_ && worker_submit(b->workers, apply_work, apply_done, j) == 0)
		return 0;
	/* The first pass (hcd's readiness waits for it), or no worker. */
	apply_work(j);
	rc = j->rc;
	apply_done(j, true);
	return rc;
}

int bandwidth_converge(struct bandwidth *b, bool thorough, bool inline_)
{
	struct shape_want *want = NULL;
	size_t n = 0;

	if (b->busy) {
		b->again = true;
		b->again_thorough |= thorough;
		return 0;
	}
	if (wanted(b, &want, &n) < 0)
		return -1;
	return apply(b, want, n, thorough, inline_);
}

int bandwidth_refresh(struct bandwidth *b)
{
	struct shape_want *want = NULL;
	size_t n = 0;

	if (b->busy)
		return 0;       /* the application under way read the store just before */
	if (wanted(b, &want, &n) < 0)
		return -1;
	if (b->applied_ok && n == b->n_applied &&
	    (n == 0 || memcmp(want, b->applied, n * sizeof(*want)) == 0)) {
		free(want);
		return 0;
	}
	return apply(b, want, n, false, false);
}
