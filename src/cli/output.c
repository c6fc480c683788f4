/*
 * output.c — what hc prints on stdout (see cli.h).
 *
 * Human output is described as data (struct column: title, member,
 * formatter) so that every noun lists and shows its objects the same way:
 * a table with aligned columns, or "key: value" lines.  --json output is the
 * daemon's JSON re-printed with indentation, members in the order received.
 */
#include "cli/cli.h"

#include "common/fsutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLUMN_GAP 2

void print_json(json_t *v)
{
	json_dumpf(v, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
	fputc('\n', stdout);
}

/* ---- formatters: one JSON member → a malloc'd cell ---------------------- */

const char *json_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	return s && *s ? s : "-";
}

void human_bytes(long long n, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lld B", n);
	else
		snprintf(buf, len, "%.1f %s", v, units[u]);
}

char *fmt_plain(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL) /* json_typeof() would dereference it */
		return strdup("-");
	switch (json_typeof(v)) {
	case JSON_STRING:
		return strdup(*json_string_value(v) ? json_string_value(v) : "-");
	case JSON_INTEGER:
		return str_printf("%lld", (long long)json_integer_value(v));
	case JSON_REAL:
		return str_printf("%g", json_real_value(v));
	case JSON_TRUE:
		return strdup("yes");
	case JSON_FALSE:
		return strdup("no");
	case JSON_OBJECT:
	case JSON_ARRAY:
		return json_dumps(v, JSON_COMPACT);
	default:
		return strdup("-"); /* null */
	}
}

char *fmt_time(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	time_t t;
	struct tm tm;
	char buf[32];

	if (!json_is_integer(v) || json_integer_value(v) <= 0)
		return strdup("-");
	t = (time_t)json_integer_value(v);
	if (gmtime_r(&t, &tm) == NULL || strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		return fmt_plain(obj, key);
	return strdup(buf);
}

char *fmt_bytes(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	char buf[32];

	if (!json_is_integer(v))
		return strdup("-");
	human_bytes((long long)json_integer_value(v), buf, sizeof(buf));
	return strdup(buf);
}

char *fmt_mib(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v))
		return strdup("-");
	return str_printf("%lld MiB", (long long)json_integer_value(v));
}

static char *cell(json_t *obj, const struct column *col)
{
	return col->fmt ? col->fmt(obj, col->key) : fmt_plain(obj, col->key);
}

/* ---- tables and fields -------------------------------------------------- */

static size_t n_columns(const struct column *cols)
{
	size_t n = 0;
	while (cols[n].title)
		n++;
	return n;
}

static void print_row(char **cells, const size_t *width, size_t ncol)
{
	for (size_t c = 0; c < ncol; c++) {
		const char *s = cells[c] ? cells[c] : "?";
		if (c + 1 < ncol)
			printf("%-*s", (int)(width[c] + COLUMN_GAP), s);
		else
			printf("%s\n", s); /* no trailing blanks */
	}
}

void print_table(json_t *rows, const struct column *cols)
{
	size_t ncol = n_columns(cols), nrow = json_array_size(rows);
	char **cells = NULL;
	size_t *width = NULL;

	if (ncol == 0)
		return;
	cells = calloc((nrow + 1) * ncol, sizeof(*cells));
	width = calloc(ncol, sizeof(*width));
	if (cells == NULL || width == NULL)
		goto out;
	for (size_t c = 0; c < ncol; c++)
		cells[c] = strdup(cols[c].title);
	for (size_t r = 0; r < nrow; r++)
		for (size_t c = 0; c < ncol; c++)
			cells[(r + 1) * ncol + c] = cell(json_array_get(rows, r), &cols[c]);
	for (size_t i = 0; i < (nrow + 1) * ncol; i++)
		if (cells[i] && strlen(cells[i]) > width[i % ncol])
			width[i % ncol] = strlen(cells[i]);
	for (size_t r = 0; r <= nrow; r++)
		print_row(&cells[r * ncol], width, ncol);
out:
	for (size_t i = 0; cells && i < (nrow + 1) * ncol; i++)
		free(cells[i]);
	free(cells);
	free(width);
}

void print_fields(json_t *obj, const struct column *cols)
{
	int width = 0;

	for (const struct column *c = cols; c->title; c++)
		if ((int)strlen(c->title) > width)
			width = (int)strlen(c->title);
	for (const struct column *c = cols; c->title; c++) {
		char *v = cell(obj, c);
		printf("%s:%*s %s\n", c->title, width - (int)strlen(c->title), "", v ? v : "?");
		free(v);
	}
}

void print_resource(const struct hc *h, const struct resource *res, json_t *obj)
{
	if (h->json) {
		print_json(obj);
		return;
	}
	print_fields(obj, res->show);
	if (res->show_more)
		res->show_more(obj);
}
