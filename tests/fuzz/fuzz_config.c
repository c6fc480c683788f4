/*
 * fuzz_config — hcd.conf and the --key=value overrides of hcd's command
 * line (common/config.h): libinih's parser, the '#' comments cut by
 * on_ini_line, and every key's value check.
 *
 * Input: the file's text, then optionally a line "%%" followed by one
 * override per line.  Whatever loads must hold no negative number (every
 * integer key is a count, a port or a time) and must free cleanly; an
 * override that loaded is what the configuration then says.
 */
#include "fuzz.h"

#include "common/config.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OVERRIDES_MAX 16

/* Does the override "[SECTION.]KEY=VALUE" set hcd.state_dir?  ('-' in
 * KEY stands for '_'.) */
static bool names_state_dir(const char *kv)
{
	const char *eq = strchr(kv, '='), *key = kv, *dot;

	if (eq == NULL)
		return false;
	dot = memchr(kv, '.', (size_t)(eq - kv));
	if (dot) {
		if (dot - kv != 3 || strncmp(kv, "hcd", 3) != 0)
			return false;
		key = dot + 1;
	}
	if (eq - key != 9)
		return false;
	for (int i = 0; i < 9; i++)
		if (key[i] != "state_dir"[i] && !(key[i] == '-' && i == 5))
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[256];
	const char *text = (const char *)data, *end = text + size, *split = NULL;
	char *overrides[OVERRIDES_MAX];
	int n = 0;
	struct config c;
	char *err = NULL;

	if (path[0] == '\0')
		snprintf(path, sizeof(path), "%s/hcd.conf", fuzz_dir("config"));
	for (const char *p = text; p + 2 <= end; p++)
		if ((p == text || p[-1] == '\n') && memcmp(p, "%%", 2) == 0 &&
		    (p + 2 == end || p[2] == '\n')) {
			split = p;
			break;
		}
	fuzz_write(path, text, split ? (size_t)(split - text) : size);
	if (split) {
		struct fuzz_in in = { split + 3 <= end ? split + 3 : end, end };
		char *line;
		while (n < OVERRIDES_MAX && (line = fuzz_line(&in)) != NULL)
			overrides[n++] = line;
	}
	config_defaults(&c);
	if (config_load(&c, path, 0, overrides, n, &err) == 0) {
		FUZZ_ASSERT(err == NULL, "loaded with an error");
		int ints[] = { c.vxlan_port, c.metadata_port, c.metadata_rate, c.stop_timeout,
			       c.resync_interval, c.heartbeat_interval, c.dead_timeout,
			       c.cpu_overcommit, c.reserved_memory_mib, c.api_rate, c.api_burst,
			       c.workers, c.ldap_starttls, c.ldap_timeout, c.token_ttl };
		for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
			FUZZ_ASSERT(ints[i] >= 0, "integer key %zu is %d", i, ints[i]);
		FUZZ_ASSERT(c.max_body >= 0, "max_body %lld", c.max_body);
		/* The last override of the state directory is the one in force,
		 * however it was spelt (state_dir, state-dir, hcd.state_dir). */
		const char *want = NULL;
		for (int i = 0; i < n; i++)
			if (names_state_dir(overrides[i]))
				want = strchr(overrides[i], '=') + 1;
		if (want)
			FUZZ_ASSERT(c.state_dir && strcmp(c.state_dir, want) == 0,
				    "state_dir '%s', override '%s'", c.state_dir, want);
	} else {
		FUZZ_ASSERT(err != NULL, "failed without a message");
	}
	free(err);
	config_free(&c);
	for (int i = 0; i < n; i++)
		free(overrides[i]);
	return 0;
}
