/*
 * resource.c — the verbs every noun shares: list, show, delete.  They work
 * on the command's struct resource (collection, columns), so a new noun
 * gets them by naming its resource in the command table.
 */
#include "cli/cli.h"

#include <stdlib.h>

int cmd_list(struct hc *h, const struct args *a)
{
	const struct resource *res = a->cmd->res;
	char path[256];
	json_t *arr;

	snprintf(path, sizeof(path), "/v1/%s", res->collection);
	/* A table needs its columns only: a list that takes sparse fields
	 * (VMs) sends just those — 10,000 rows travel and parse faster. */
	if (!h->json && res->list_fields)
		snprintf(path, sizeof(path), "/v1/%s?fields=%s", res->collection, res->list_fields);
	if (api_call(h, "GET", path, NULL, &arr, NULL) < 0)
		return -1;
	if (!json_is_array(arr)) {
		json_decref(arr);
		return hc_fail(h, "hcd sent something other than a list of %ss", res->what);
	}
	if (h->json)
		print_json(arr);
	else
		print_table(arr, res->list);
	json_decref(arr);
	return 0;
}

int cmd_show(struct hc *h, const struct args *a)
{
	const struct resource *res = a->cmd->res;
	char *path = api_path(res->collection, a->pos[0], NULL);
	json_t *obj;
	int rc;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, "GET", path, NULL, &obj, NULL);
	free(path);
	if (rc < 0)
		return -1;
	print_resource(h, res, obj);
	json_decref(obj);
	return 0;
}

int cmd_delete(struct hc *h, const struct args *a)
{
	const struct resource *res = a->cmd->res;
	char *path = api_path(res->collection, a->pos[0], NULL);
	json_t *obj;
	long status;
	int rc;

	if (path == NULL)
		return hc_fail(h, "out of memory");
	rc = api_call(h, "DELETE", path, NULL, &obj, &status);
	free(path);
	if (rc < 0)
		return -1;
	if (h->json) {
		print_json(obj);
	} else {
		/* 202: accepted, the agent finishes it (a VM is stopped first). */
		printf("%s %s '%s' (%s)\n", status == 202 ? "deleting" : "deleted", res->what,
		       json_str(obj, "name"), json_str(obj, "id"));
	}
	json_decref(obj);
	return 0;
}
