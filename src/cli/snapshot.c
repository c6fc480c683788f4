/*
 * snapshot — `hc vm snapshot create|list|restore|delete VM [NAME]`: disk
 * snapshots of a VM (issue 14 §2).  Every call waits for the operation:
 * hcd answers once the layers are made, restored or merged.
 */
#include "cli/cli.h"

#include "common/fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct column snapshot_cols[] = {
	{ "ID", "id", NULL },
	{ "NAME", "name", NULL },
	{ "STATE", "state", NULL },
	{ "LIVE", "live", NULL },
	{ "BYTES", "bytes", fmt_bytes },
	{ "CREATED", "created", fmt_time },
	{ NULL, NULL, NULL },
};

/* vms/VM/snapshots[/NAME[/tail]] */
static char *snapshot_path(const char *vm, const char *name, const char *tail)
{
	char *suffix = str_printf("snapshots%s%s%s%s", name ? "/" : "", name ? name : "",
				  tail ? "/" : "", tail ? tail : "");
	char *path = suffix ? api_path("vms", vm, suffix) : NULL;

	free(suffix);
	return path;
}

static int snapshot_call(struct hc *h, const char *method, char *path, json_t *body,
			 const char *done, const char *vm, const char *name)
{
	json_t *out = NULL;
	int rc;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, method, path, body, &out, NULL);
	free(path);
	json_decref(body);
	if (rc < 0)
		return -1;
	if (h->json)
		print_json(out);
	else if (done)
		printf("vm '%s': snapshot '%s' %s\n", vm, name, done);
	else
		print_table(out, snapshot_cols);
	json_decref(out);
	return 0;
}

int cmd_vm_snapshot(struct hc *h, const struct args *a)
{
	const char *sub = a->pos[0], *vm = a->n_pos > 1 ? a->pos[1] : NULL;
	const char *name = a->n_pos > 2 ? a->pos[2] : NULL;

	/* Names the API accepts hold no character a path would take apart. */
	if (name && strpbrk(name, "/?#%"))
		return hc_usage(h, "'%s' is not a snapshot name", name);
	if (strcmp(sub, "list") == 0 && a->n_pos == 2)
		return snapshot_call(h, "GET", snapshot_path(vm, NULL, NULL), NULL, NULL, vm, NULL);
	if (a->n_pos != 3)
		return hc_usage(h, "usage: hc vm snapshot create VM NAME | list VM | restore VM NAME"
				" [--discard-newer] | delete VM NAME");
	if (strcmp(sub, "create") == 0)
		return snapshot_call(h, "POST", snapshot_path(vm, NULL, NULL),
				     json_pack("{s:s}", "name", name), "created", vm, name);
	if (strcmp(sub, "restore") == 0)
		return snapshot_call(h, "POST", snapshot_path(vm, name, "restore"),
				     json_pack("{s:b}", "discard_newer", arg_opt(a, "--discard-newer") != NULL),
				     "restored", vm, name);
	if (strcmp(sub, "delete") == 0)
		return snapshot_call(h, "DELETE", snapshot_path(vm, name, NULL), NULL, "deleted", vm, name);
	return hc_usage(h, "unknown 'hc vm snapshot %s': use create, list, restore or delete", sub);
}
