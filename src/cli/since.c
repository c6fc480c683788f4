/* since — `hc audit --since`: when "since" is (see cli.h). */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

long long since_parse(const char *s, long long now)
{
	static const struct { char unit; long long secs; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 },
	};
	struct tm tm = { 0 };
	size_t digits = strspn(s, "0123456789");
	const char *end;

	if (digits > 0 && digits <= 12 && s[digits] == '\0')
		return strtoll(s, NULL, 10);
	if (digits > 0 && digits <= 9 && s[digits] != '\0' && s[digits + 1] == '\0') {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (s[digits] == units[i].unit) {
				long long back = strtoll(s, NULL, 10) * units[i].secs;
				return back <= now ? now - back : 0;
			}
		return -1;
	}
	/* A date, or a date and a time, in UTC. */
	end = strptime(s, "%Y-%m-%d", &tm);
	if (end && *end == 'T')
		end = strptime(end + 1, "%H:%M", &tm);
	if (end && *end == ':')
		end = strptime(end + 1, "%S", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	time_t t = timegm(&tm);
	return t < 0 ? -1 : (long long)t;
}
