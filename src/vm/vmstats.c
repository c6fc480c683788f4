/* vmstats — see vmstats.h. */
#include "vm/vmstats.h"

#include "common/fsutil.h"
#include "net/linkstats.h"
#include "vm/qmp.h"

#include <netlink/netlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- the QEMU process --------------------------------------------------- */

int vmstats_parse_stat(const char *text, long ticks_per_s, double *cpu_seconds)
{
	/* "PID (COMM) STATE PPID …": COMM may hold spaces and parentheses,
	 * so fields are counted from the last ')'.  utime and stime are
	 * fields 14 and 15 (proc(5)), the 12th and 13th after it. */
	const char *p = strrchr(text, ')');
	unsigned long long utime = 0, stime = 0;

	if (p == NULL || ticks_per_s <= 0)
		return -1;
	p++;
	for (int field = 3; field <= 15; field++) {
		char *end;
		p += strspn(p, " ");
		if (*p == '\0')
			return -1;
		if (field == 14)
			utime = strtoull(p, &end, 10);
		else if (field == 15)
			stime = strtoull(p, &end, 10);
		else
			end = (char *)p + strcspn(p, " ");
		if (end == p)
			return -1;
		p = end;
	}
	*cpu_seconds = (double)(utime + stime) / (double)ticks_per_s;
	return 0;
}

int vmstats_parse_rss(const char *text, uint64_t *bytes)
{
	const char *line = strstr(text, "\nVmRSS:");
	unsigned long long kib;

	if (line == NULL || sscanf(line + 7, " %llu kB", &kib) != 1)
		return -1;
	*bytes = (uint64_t)kib * 1024;
	return 0;
}

int vmstats_proc(pid_t pid, struct proc_usage *out)
{
	char path[64], *text = NULL;
	int rc = -1;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (file_read(path, 4096, &text, NULL) < 0 ||
	    vmstats_parse_stat(text, sysconf(_SC_CLK_TCK), &out->cpu_seconds) < 0)
		goto out;
	free(text);
	text = NULL;
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if (file_read(path, 16384, &text, NULL) < 0 || vmstats_parse_rss(text, &out->rss_bytes) < 0)
		goto out;
	rc = 0;
out:
	free(text);
	return rc;
}

/* ---- NICs ----------------------------------------------------------------- */

struct nicstats {
	struct link_stat *links;     /* net/linkstats.h: the taps, sorted by name */
	size_t n;
};

struct nicstats *nicstats_open(char **err)
{
	struct nicstats *s = calloc(1, sizeof(*s));
	struct nl_sock *sk = NULL;

	*err = NULL;
	if (s == NULL || (sk = link_dump_socket(err)) == NULL ||
	    link_stats_dump(sk, "v", &s->links, &s->n, err) < 0) {
		if (*err == NULL)
			*err = strdup("out of memory");
		nicstats_close(s);
		s = NULL;
	}
	nl_socket_free(sk);
	return s;
}

int nicstats_get(struct nicstats *s, const char *ifname, struct nic_counters *out)
{
	const struct link_stat *l = link_stats_find(s->links, s->n, ifname);

	if (l == NULL)
		return -1;
	/* The tap is the host's end of the guest's cable. */
	out->rx_bytes = l->tx_bytes;
	out->rx_packets = l->tx_packets;
	out->tx_bytes = l->rx_bytes;
	out->tx_packets = l->rx_packets;
	return 0;
}

void nicstats_close(struct nicstats *s)
{
	if (s == NULL)
		return;
	free(s->links);
	free(s);
}

/* ---- disks ---------------------------------------------------------------- */

static uint64_t member_u(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* A disk's name from the device QEMU reports it under.  hcd names its
 * devices after their block nodes (vm/qemu_argv.c: "vd-disk", "vd-data0",
 * "cd-seed"), and virtio ones report the QOM path of their backend:
 *   "/machine/peripheral/vd-data0/virtio-backend" → "data0"
 *   "cd-seed" → "seed"
 *   "/machine/peripheral-anon/device[1]/virtio-backend" → "device[1]"
 * (a device without an ID: the part that tells two of them apart). */
static void qdev_name(const char *qdev, char *out, size_t len)
{
	static const char peripheral[] = "/machine/peripheral/";
	const char *p = strstr(qdev, "/device[");
	size_t n;

	if (p) {
		n = strcspn(p + 1, "/");
		snprintf(out, len, "%.*s", (int)n, p + 1);
		return;
	}
	if (strncmp(qdev, peripheral, sizeof(peripheral) - 1) == 0) {
		p = qdev + sizeof(peripheral) - 1;
		n = strcspn(p, "/");
	} else {
		p = strrchr(qdev, '/');
		p = p && p[1] ? p + 1 : qdev;
		n = strlen(p);
	}
	if (n > 3 && (strncmp(p, "vd-", 3) == 0 || strncmp(p, "cd-", 3) == 0)) {
		p += 3;
		n -= 3;
	}
	snprintf(out, len, "%.*s", (int)n, p);
}

size_t vmstats_blockstats_parse(json_t *reply, struct disk_counters *out, size_t max)
{
	size_t i, n = 0;
	json_t *e;

	json_array_foreach(reply, i, e) {
		json_t *st = json_object_get(e, "stats");
		const char *dev = json_string_value(json_object_get(e, "device"));
		const char *qdev = json_string_value(json_object_get(e, "qdev"));
		const char *node = json_string_value(json_object_get(e, "node-name"));
		struct disk_counters *d = &out[n];
		if (n == max || !json_is_object(st))
			continue;
		memset(d, 0, sizeof(*d));
		if (dev && dev[0])
			snprintf(d->name, sizeof(d->name), "%s", dev);
		else if (qdev && qdev[0])
			qdev_name(qdev, d->name, sizeof(d->name));
		else if (node && node[0])
			snprintf(d->name, sizeof(d->name), "%s", node);
		else
			continue;
		d->rd_bytes = member_u(st, "rd_bytes");
		d->wr_bytes = member_u(st, "wr_bytes");
		d->rd_ops = member_u(st, "rd_operations");
		d->wr_ops = member_u(st, "wr_operations");
		n++;
	}
	return n;
}

int vmstats_blockstats(const char *qmp_path, struct disk_counters *out, size_t max, size_t *n,
		       char **err)
{
	json_t *reply = NULL;

	*n = 0;
	if (qmp_command(qmp_path, "query-blockstats", NULL, &reply, err) < 0)
		return -1;
	*n = vmstats_blockstats_parse(reply, out, max);
	json_decref(reply);
	return 0;
}
