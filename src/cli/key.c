/*
 * key.c — `hc key …`: SSH public keys.  list, show and delete are the
 * shared verbs of resource.c; add is here.  The daemon validates the key
 * (one place knows the rules); hc only reads the file.
 */
#include "cli/cli.h"

#include "common/fsutil.h"
#include "common/sshkey.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct column key_list[] = {
	{ "ID", "id", NULL },
	{ "NAME", "name", NULL },
	{ "TYPE", "type", NULL },
	{ "FINGERPRINT", "fingerprint", NULL },
	{ 0 },
};

static const struct column key_show[] = {
	{ "id", "id", NULL },
	{ "name", "name", NULL },
	{ "type", "type", NULL },
	{ "fingerprint", "fingerprint", NULL },
	{ "pubkey", "pubkey", NULL },
	{ "owner", "owner", NULL },
	{ "created", "created", fmt_time },
	{ 0 },
};

const struct resource res_key = { "key", "keys", key_list, key_show, NULL, NULL };

int cmd_key_add(struct hc *h, const struct args *a)
{
	const char *file = arg_opt(a, "--file");
	char *text = NULL;
	size_t len = 0;
	json_t *body, *key;
	int rc;

	if ((file == NULL) == (a->n_pos < 2))
		return hc_usage(h, "key add: give the key with --file F or as one quoted argument");
	if (file) {
		/* One byte more than the daemon takes, so an oversized file is
		 * refused instead of cut. */
		if (file_read(file, SSHKEY_LINE_MAX + 1, &text, &len) < 0)
			return hc_fail(h, "%s: %s", file, strerror(errno));
		if (len > SSHKEY_LINE_MAX || strlen(text) != len) {
			free(text);
			return hc_fail(h, "%s: not an OpenSSH public key file", file);
		}
	}
	body = json_pack("{s:s, s:s}", "name", a->pos[0], "pubkey", file ? text : a->pos[1]);
	free(text);
	if (body == NULL)
		return hc_usage(h, "the name and the key must be valid UTF-8 text");
	rc = api_call(h, "POST", "/v1/keys", body, &key, NULL);
	json_decref(body);
	if (rc < 0)
		return -1;
	print_resource(h, &res_key, key);
	json_decref(key);
	return 0;
}
