/* sse — see sse.h. */
#include "cli/sse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_BYTES (16 << 20)

static bool append(char **buf, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 256;
		while (c < *len + n + 1)
			c *= 2;
		char *nb = realloc(*buf, c);
		if (nb == NULL)
			return false;
		*buf = nb;
		*cap = c;
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return true;
}

/* Bytes before the next CR or LF. */
static size_t strcspn_n(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && s[i] != '\n' && s[i] != '\r')
		i++;
	return i;
}

/* One complete line: a field, a comment, or the end of an event. */
static int line_done(struct sse_parser *p, sse_event_fn fn, void *arg)
{
	const char *l = p->line ? p->line : "";
	const char *colon, *value;
	size_t name_len;

	if (p->len == 0) {
		int go = 1;
		if (p->has_data)
			go = fn(arg, p->id, p->event[0] ? p->event : "message",
				p->data ? p->data : "") ? 1 : 0;
		p->data_len = 0;
		if (p->data)
			p->data[0] = '\0';
		p->has_data = false;
		p->event[0] = '\0';
		return go;
	}
	if (l[0] == ':')
		return 1;
	colon = strchr(l, ':');
	name_len = colon ? (size_t)(colon - l) : strlen(l);
	value = colon ? colon + 1 + (colon[1] == ' ') : "";
	if (name_len == 4 && strncmp(l, "data", 4) == 0) {
		if ((p->has_data && !append(&p->data, &p->data_len, &p->data_cap, "\n", 1)) ||
		    !append(&p->data, &p->data_len, &p->data_cap, value, strlen(value)))
			return -1;
		p->has_data = true;
	} else if (name_len == 5 && strncmp(l, "event", 5) == 0) {
		snprintf(p->event, sizeof(p->event), "%s", value);
	} else if (name_len == 2 && strncmp(l, "id", 2) == 0 && strlen(value) < sizeof(p->id)) {
		snprintf(p->id, sizeof(p->id), "%s", value);
	}
	/* "retry" and unknown fields: nothing for us to do. */
	return 1;
}

int sse_feed(struct sse_parser *p, const char *buf, size_t n, sse_event_fn fn, void *arg)
{
	size_t i = 0;

	while (i < n) {
		if (p->cr && buf[i] == '\n') {
			/* CRLF: the CR already ended the line. */
			p->cr = false;
			i++;
			continue;
		}
		size_t run = strcspn_n(buf + i, n - i);
		if (run > 0) {
			if (p->len + run > LINE_MAX_BYTES ||
			    !append(&p->line, &p->len, &p->cap, buf + i, run))
				return -1;
			i += run;
			p->cr = false;
			continue;
		}
		p->cr = buf[i] == '\r';
		i++;
		int rc = line_done(p, fn, arg);
		p->len = 0;
		if (p->line)
			p->line[0] = '\0';
		if (rc <= 0)
			return rc;
	}
	return 1;
}

void sse_parser_free(struct sse_parser *p)
{
	free(p->line);
	free(p->data);
	memset(p, 0, sizeof(*p));
}
