/* progress — see progress.h. */
#include "cli/progress.h"

#include "cli/cli.h"
#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>

void progress_init(struct progress *p, const char *label, bool tty)
{
	*p = (struct progress){ .label = label, .tty = tty, .last_pct = -1, .last_done = -1 };
}

static int percent(long long done, long long total)
{
	if (total <= 0 || done >= total)
		return total < 0 ? -1 : 100;
	return done <= 0 ? 0 : (int)(done * 100 / total);
}

char *progress_render(struct progress *p, long long done, long long total)
{
	int pct = percent(done, total);
	char now[32], all[32];

	if (!p->tty) {
		if (pct < 0 || (p->last_pct >= 0 && pct < p->last_pct + PROGRESS_STEP &&
				!(pct == 100 && p->last_pct != 100)))
			return NULL;
		p->last_pct = pct;
		return str_printf("%s: %d%%\n", p->label, pct);
	}
	human_bytes(done, now, sizeof(now));
	if (pct < 0) {
		if (done == p->last_done)
			return NULL;
		p->last_done = done;
		p->on_screen = true;
		return str_printf("\r%s: %s\033[K", p->label, now);
	}
	if (pct == p->last_pct)
		return NULL;
	char bar[PROGRESS_BAR + 1];
	int filled = pct * PROGRESS_BAR / 100;
	memset(bar, '#', (size_t)filled);
	memset(bar + filled, '.', (size_t)(PROGRESS_BAR - filled));
	bar[PROGRESS_BAR] = '\0';
	human_bytes(total, all, sizeof(all));
	p->last_pct = pct;
	p->on_screen = true;
	return str_printf("\r%s [%s] %3d%%  %s of %s\033[K", p->label, bar, pct, now, all);
}

void progress_update(struct progress *p, FILE *out, long long done, long long total)
{
	char *text = progress_render(p, done, total);

	if (text) {
		fputs(text, out);
		fflush(out);
	}
	free(text);
}

void progress_end(struct progress *p, FILE *out)
{
	if (p->on_screen)
		fputc('\n', out);
	p->on_screen = false;
}
